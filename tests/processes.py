"""Child processes of the test suite: started against a generous deadline, always reaped.

Every test that starts a process goes through here (or through the MCP SDK's stdio client,
which reaps its own child). A process is started with its output in a log file (a pipe
nobody reads stalls a chatty server), waited for with a deadline that holds on a busy
machine (``SCS_TEST_START_TIMEOUT``, 90 s by default) but fails at once, with the log's
tail, when the process exits early, and stopped as terminate, wait, kill, wait, with every
pipe closed. tests/conftest.py checks after each test and at the end of the session that no
child outlived it, and reaps any that did.
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

START_TIMEOUT_S = float(os.environ.get("SCS_TEST_START_TIMEOUT", "90"))
STOP_TIMEOUT_S = 15.0
_POLL_S = 0.05
_TAIL = 4000

# pid -> the Popen we made for it: a leaked one is reaped through it, pipes and all.
_started: dict[int, subprocess.Popen[Any]] = {}


class ProcessFailed(RuntimeError):
    """A child exited early or never became ready; the message ends with its log's tail."""


def _die_with_parent() -> Callable[[], None] | None:
    """Linux: the child is killed when pytest dies, so no server outlives a killed run.

    Only from the main thread: the signal fires when the *thread* that forked exits, and a
    worker thread may end long before the test does.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not (
        threading.main_thread()
    ):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1

    def preexec() -> None:
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)

    return preexec


def spawn(
    args: Sequence[str | os.PathLike[str]],
    *,
    log: Path | None = None,
    env: dict[str, str] | None = None,
    **popen: Any,
) -> subprocess.Popen[Any]:
    """``Popen`` with stdin closed and stdout+stderr in ``log`` (when given), tracked for
    reaping. Any other ``Popen`` argument (pipes, ``text``, ``cwd``) may be passed."""
    popen.setdefault("stdin", subprocess.DEVNULL)
    popen.setdefault("preexec_fn", _die_with_parent())
    if log is None:
        process = subprocess.Popen(args, env=env, **popen)
    else:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as sink:  # the child keeps its own copy of the descriptor
            popen.setdefault("stdout", sink)
            popen.setdefault("stderr", subprocess.STDOUT)
            process = subprocess.Popen(args, env=env, **popen)
    _started[process.pid] = process
    return process


def log_tail(log: Path | None, limit: int = _TAIL) -> str:
    if log is None or not log.exists():
        return "(no log)"
    text = log.read_bytes()[-limit:].decode(errors="replace")
    return text or "(empty log)"


def _healthy(url: str) -> bool:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=2)
    try:
        connection.request("GET", parts.path or "/")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def wait_until(
    process: subprocess.Popen[Any],
    ready: Callable[[], bool],
    *,
    log: Path | None = None,
    what: str = "process",
    timeout: float | None = None,
) -> float:
    """Poll ``ready`` until it holds; seconds it took. The process is reaped and
    ProcessFailed raised (with the log's tail) if it exits first or the deadline passes."""
    limit = START_TIMEOUT_S if timeout is None else timeout
    started = time.monotonic()
    while True:
        if process.poll() is not None:
            reap(process)
            raise ProcessFailed(
                f"{what} exited with {process.returncode} before it was ready:\n{log_tail(log)}"
            )
        if ready():
            return time.monotonic() - started
        if time.monotonic() - started > limit:
            reap(process)
            raise ProcessFailed(
                f"{what} was not ready within {limit:g} s "
                f"(SCS_TEST_START_TIMEOUT raises it):\n{log_tail(log)}"
            )
        time.sleep(_POLL_S)


def wait_healthy(
    process: subprocess.Popen[Any],
    url: str,
    *,
    log: Path | None = None,
    what: str = "server",
    timeout: float | None = None,
) -> float:
    """Wait until GET ``url`` answers 200 (see ``wait_until``)."""
    return wait_until(process, lambda: _healthy(url), log=log, what=what, timeout=timeout)


def _close_pipes(process: subprocess.Popen[Any]) -> None:
    for pipe in (process.stdin, process.stdout, process.stderr):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()


def reap(process: subprocess.Popen[Any], timeout: float = STOP_TIMEOUT_S) -> int:
    """Stop ``process`` and whatever it started: terminate, wait up to ``timeout``, kill,
    wait; then close its pipes. Returns its exit code. Safe to call twice."""
    running = process.poll() is None
    descendants = {pid: _born(pid) for pid in _descendants(process.pid)} if running else {}
    if running:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for pid, born in descendants.items():  # what it left running (the same process: its
        if born is not None and _born(pid) == born:  # pid may have been reused since)
            kill_tree(pid, timeout=timeout)
    _close_pipes(process)
    _started.pop(process.pid, None)
    return process.returncode


def run(
    args: Sequence[str | os.PathLike[str]],
    *,
    timeout: float,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    stop_timeout: float = STOP_TIMEOUT_S,
) -> subprocess.CompletedProcess[str]:
    """Run to completion with text output captured; on ``timeout`` the process and
    everything it started are stopped before TimeoutExpired is raised."""
    process = spawn(
        args, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        out, err = process.communicate(timeout=timeout)
    except BaseException:
        for pid in _descendants(process.pid):
            kill_tree(pid, stop_timeout)
        reap(process, stop_timeout)
        raise
    reap(process)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


# --- what is still running ---------------------------------------------------------------


def _state(pid: int) -> str | None:
    """The /proc state letter (Z: a zombie), None when gone or not on Linux."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def _born(pid: int) -> str | None:
    """When the process started (/proc stat field 22), to tell it from a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _proc_children(pid: int) -> list[int] | None:
    """Direct children from /proc (fast: per thread, not a scan of every process)."""
    tasks = Path(f"/proc/{pid}/task")
    try:
        files = [task / "children" for task in tasks.iterdir()]
    except OSError:
        return None
    found: list[int] = []
    for file in files:
        try:
            found += [int(child) for child in file.read_text().split()]
        except FileNotFoundError:
            continue  # a thread that ended meanwhile
        except OSError:
            return None  # no CONFIG_PROC_CHILDREN
    return found


def children(pid: int | None = None) -> list[int]:
    """Running (not zombie) direct children of ``pid`` (default: this process)."""
    pid = os.getpid() if pid is None else pid
    found = _proc_children(pid)
    if found is not None:
        return [child for child in found if _state(child) not in (None, "Z")]
    try:
        import psutil  # type: ignore[import-untyped,unused-ignore]
    except ImportError:  # only the processes this module started
        return [p for p, proc in _started.items() if proc.poll() is None]
    try:
        return [
            child.pid
            for child in psutil.Process(pid).children()
            if child.status() != psutil.STATUS_ZOMBIE
        ]
    except psutil.Error:
        return []


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    for child in children(pid):
        found += [child, *_descendants(child)]
    return found


def describe(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        command = " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)
    except OSError:
        command = "?"
    return f"pid {pid}: {command[:300]}"


def kill_tree(pid: int, timeout: float = STOP_TIMEOUT_S) -> None:
    """Stop a process we may hold no Popen for, and its descendants."""
    tracked = _started.get(pid)
    below = _descendants(pid)
    if tracked is not None:
        reap(tracked, timeout)
    else:
        _signal([pid, *below], signal.SIGTERM)
        _wait_gone([pid, *below], timeout)
    # Its exit status is left to whoever started it (an event loop's child watcher would
    # log a stolen one); a zombie is not counted as running.
    left = [target for target in [pid, *below] if _alive(target)]
    _signal(left, signal.SIGKILL)
    _wait_gone(left, timeout)


def _signal(pids: list[int], signum: int) -> None:
    for target in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(target, signum)


def _wait_gone(pids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(_POLL_S)


def _alive(pid: int) -> bool:
    state = _state(pid)
    if state is not None:
        return state != "Z"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_survivors(before: set[int] | None = None, timeout: float = STOP_TIMEOUT_S) -> list[str]:
    """Stop every running child of this process not in ``before``; what each one was."""
    survivors = [pid for pid in children() if pid not in (before or set())]
    described = [describe(pid) for pid in survivors]
    for pid in survivors:
        kill_tree(pid, timeout)
    return described
