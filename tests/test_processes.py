"""The test harness's process helper: early exits fail fast, every process is reaped."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import processes

REPO = Path(__file__).resolve().parents[1]
# Prints "ready", then ignores SIGTERM: only a kill stops it.
STUBBORN = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(600)\n"
)
# Starts a grandchild in a session of its own that ignores SIGTERM, prints its pid, waits.
PARENT = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', sys.argv[1]], start_new_session=True,\n"
    "                         stdout=subprocess.PIPE, text=True)\n"
    "assert child.stdout.readline() == 'ready\\n'\n"
    "print(child.pid, flush=True)\n"
    "time.sleep(600)\n"
)


def _python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


def _ready_line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    return process.stdout.readline().strip()


def test_an_early_exit_fails_at_once_with_the_log_tail(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    process = processes.spawn(_python("print('cannot bind'); raise SystemExit(3)"), log=log)
    started = time.monotonic()
    with pytest.raises(processes.ProcessFailed, match="exited with 3") as failed:
        processes.wait_until(process, lambda: False, log=log, timeout=120)
    assert time.monotonic() - started < 60  # not the deadline: the exit
    assert "cannot bind" in str(failed.value)


def test_a_process_never_ready_is_reaped_at_the_deadline(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    process = processes.spawn(_python("import time; print('slow'); time.sleep(600)"), log=log)
    with pytest.raises(processes.ProcessFailed, match=r"not ready within 0\.5 s"):
        processes.wait_until(process, lambda: False, log=log, timeout=0.5)
    assert process.returncode is not None
    assert process.pid not in processes.children()


def test_a_process_ignoring_terminate_is_killed_and_its_pipes_closed() -> None:
    process = processes.spawn(_python(STUBBORN), stdout=subprocess.PIPE, text=True)
    assert _ready_line(process) == "ready"
    assert processes.reap(process, timeout=0.5) == -signal.SIGKILL
    assert process.stdout is not None
    assert process.stdout.closed
    assert processes.reap(process) == -signal.SIGKILL  # twice is harmless


def test_reaping_a_process_stops_what_it_started() -> None:
    parent = processes.spawn(_python(PARENT, STUBBORN), stdout=subprocess.PIPE, text=True)
    grandchild = int(_ready_line(parent))
    assert processes._alive(grandchild)
    processes.reap(parent, timeout=0.5)
    assert not processes._alive(grandchild)


def test_a_timed_out_run_stops_its_whole_tree() -> None:
    before = set(processes.children())
    # The pid is printed as soon as the grandchild is forked, well before the deadline.
    quick_parent = PARENT.replace("assert child.stdout.readline() == 'ready\\n'\n", "")
    with pytest.raises(subprocess.TimeoutExpired) as timed_out:
        processes.run(_python(quick_parent, STUBBORN), timeout=4, stop_timeout=0.5)
    assert timed_out.value.output  # what it printed before the deadline: the grandchild
    grandchild = int(timed_out.value.output)
    assert not processes._alive(grandchild)
    assert set(processes.children()) <= before


def test_a_leaked_process_is_found_and_stopped() -> None:
    before = set(processes.children())
    leaked = subprocess.Popen(_python(STUBBORN), stdout=subprocess.PIPE, text=True)
    assert _ready_line(leaked) == "ready"
    [described] = processes.reap_survivors(before, timeout=0.5)
    assert described.startswith(f"pid {leaked.pid}: ")
    assert "SIG_IGN" in described
    assert leaked.wait(timeout=30) == -signal.SIGKILL
    assert leaked.stdout is not None
    leaked.stdout.close()


def test_a_child_dies_with_the_process_that_started_it() -> None:
    """A killed test run leaves no server behind (Linux: PR_SET_PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("parent-death signal is Linux only")
    starter = (
        "import subprocess, sys, time\n"
        "from tests import processes\n"
        "child = processes.spawn([sys.executable, '-c', sys.argv[1]], stdout=subprocess.PIPE,\n"
        "                        text=True)\n"
        "assert child.stdout.readline() == 'ready\\n'\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = processes.spawn(
        _python(starter, STUBBORN), stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    child = int(_ready_line(parent))
    parent.kill()  # as a timeout or an OOM killer would: no clean-up runs
    parent.wait()
    deadline = time.monotonic() + 30
    while processes._alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not processes._alive(child)
    processes.reap(parent)
