"""Run Python snippets as separate OS processes, started together."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence

from tests import processes


def run_together(script: str, argv_per_process: Sequence[Sequence[str]]) -> list[str]:
    """Start one process per argv, release them at once, return their stdout after "ready".

    Each script prints ``ready``, then waits for a line on stdin before doing its work, so
    the work of all processes overlaps. A failing process fails the caller with its stderr.
    """
    procs = [
        processes.spawn(
            [sys.executable, "-c", script, *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for argv in argv_per_process
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            assert line == "ready", proc.communicate(timeout=30)[1]
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = [proc.communicate(timeout=processes.START_TIMEOUT_S) for proc in procs]
    finally:
        for proc in procs:
            processes.reap(proc)  # pipes closed too
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
    return [out for out, _ in results]
