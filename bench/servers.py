"""Start and stop the servers under test as processes on free loopback ports."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from mcp import StdioServerParameters

from bench.context import HOST

HEALTH_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Credentials:
    """A fresh admin API key and JWT secret per run; nothing from the user's setup."""

    admin_key: str = field(default_factory=lambda: "scs_bench-" + secrets.token_urlsafe(24))
    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(48))


@dataclass
class ServerProcess:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    startup_s: float
    log: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/mcp"

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_mb(self) -> float:
        return rss_mb(self.pid)

    def stop(self) -> None:
        stop_process(self.process)


def rss_mb(pid: int) -> float:
    """VmRSS of a process in MiB, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmRSS for pid {pid}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without any SCS_ or unprefixed server settings."""
    dropped = {"DATABASE_URL", "JWT_SECRET_KEY", "API_KEY"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCS_") and k not in dropped}
    # The bench package must import in the floor process whatever the working directory.
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(repo_root()), env.get("PYTHONPATH", "")) if p
    )
    env.update(extra)
    return env


def ours_env(data_dir: Path, creds: Credentials, **extra: str) -> dict[str, str]:
    return clean_env(
        SCS_DATA_DIR=str(data_dir),
        SCS_API_KEY=creds.admin_key,
        SCS_JWT_SECRET_KEY=creds.jwt_secret,
        SCS_LOG_LEVEL="WARNING",
        # The load runs post far beyond an agent's message quota; it is still checked.
        SCS_QUOTA_MESSAGES_PER_MINUTE="1000000000",
        # One benchmark agent calls far faster than an agent does: the per-identity call
        # rate limit (still checked on every call) is raised out of the measurements' way.
        SCS_ABUSE_CALLS_PER_SECOND="1000000000",
        SCS_ABUSE_CALLS_BURST="1000000000",
        **extra,
    )


def _healthy(port: int) -> bool:
    connection = http.client.HTTPConnection(HOST, port, timeout=1)
    try:
        connection.request("GET", "/health")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def _start(name: str, args: list[str], env: dict[str, str], port: int, log: Path) -> ServerProcess:
    log.parent.mkdir(parents=True, exist_ok=True)
    # A file, not a pipe: a pipe nobody reads would block a chatty server.
    with log.open("wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err
        )
    deadline = started + HEALTH_TIMEOUT_S
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited ({process.returncode}): {log.read_text()[-2000:]}")
        if _healthy(port):
            return ServerProcess(name, process, port, time.perf_counter() - started, log)
        time.sleep(0.005)
    stop_process(process)
    raise RuntimeError(f"{name} did not become healthy in {HEALTH_TIMEOUT_S} s")


def start_ours(
    data_dir: Path, creds: Credentials, log: Path, *options: str, **env: str
) -> ServerProcess:
    """``options``: more of ``serve``'s options; ``env``: more settings."""
    port = free_port()
    args = [sys.executable, "-m", "shared_context_server", "serve"]
    args += ["--transport", "http", "--host", HOST, "--port", str(port), *options]
    return _start("ours", args, ours_env(data_dir, creds, **env), port, log)


def wait_for_workers(server: ServerProcess, count: int) -> None:
    """Until ``count`` workers of ``serve --workers`` serve: /health answers as soon as the
    first does, and connections opened before the others are up would all go to it. A worker
    makes its unix socket (in the directory its environment names) once its app is open."""
    deadline = time.perf_counter() + HEALTH_TIMEOUT_S
    while time.perf_counter() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited: {server.log.read_text()[-2000:]}")
        if _serving_workers(server.pid) >= count:
            return
        time.sleep(0.05)
    raise RuntimeError(f"{server.name}: {count} workers not up in {HEALTH_TIMEOUT_S} s")


def wait_for_floor_workers(floor: ServerProcess, count: int) -> None:
    """Until each of the floor's ``count`` workers has answered /health (which names the
    worker's pid) on a connection of its own."""
    seen: set[int] = set()
    deadline = time.perf_counter() + HEALTH_TIMEOUT_S
    while len(seen) < count:
        if time.perf_counter() > deadline:
            raise RuntimeError(f"floor: {count} workers not up in {HEALTH_TIMEOUT_S} s")
        connection = http.client.HTTPConnection(HOST, floor.port, timeout=1)
        try:
            connection.request("GET", "/health")
            seen.add(int(json.loads(connection.getresponse().read())["pid"]))
        except OSError:
            time.sleep(0.05)
        finally:
            connection.close()


def _serving_workers(pid: int) -> int:
    serving = 0
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        try:
            environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile
            continue
        for entry in environ:
            name, _, value = entry.partition(b"=")
            if name == b"SCS_WORKER_SOCKETS" and (Path(value.decode()) / f"{child}.sock").exists():
                serving += 1
    return serving


def start_floor(log: Path, workers: int = 1) -> ServerProcess:
    port = free_port()
    args = [sys.executable, "-m", "bench.floor", "--host", HOST, "--port", str(port)]
    return _start("floor", [*args, f"--workers={workers}"], clean_env(), port, log)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def ours_stdio(
    data_dir: Path, creds: Credentials, token: str, agent_id: str, agent_type: str = "claude"
) -> StdioServerParameters:
    """Our server as a stdio client launches it: identity from its environment."""
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "shared_context_server", "serve", "--transport", "stdio"],
        env=ours_env(
            data_dir, creds, SCS_AUTH_TOKEN=token, SCS_AGENT_ID=agent_id, SCS_AGENT_TYPE=agent_type
        ),
    )


def floor_stdio() -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable, args=["-m", "bench.floor", "--stdio"], env=clean_env()
    )
