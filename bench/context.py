"""What every section gets: the plan, the servers, the seeded sessions and identities."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the lean generator's client processes import this module: keep it light
    from bench.plan import Plan
    from bench.seed import SeededSession
    from bench.servers import Credentials, ServerProcess

HOST = "127.0.0.1"  # every server under test listens on loopback only
READER = "bench-reader"  # read, write: the agent of the sequential runs
ADMIN = "bench-admin"  # read, write, admin: for get_audit_log


def agent_ids(count: int) -> list[str]:
    """The concurrent agents: one identity each."""
    return [f"bench-agent-{i:02d}" for i in range(count)]


@dataclass
class Bench:
    plan: Plan
    creds: Credentials
    workdir: Path
    data_dir: Path
    ours: ServerProcess
    floor: ServerProcess
    seeded: list[SeededSession] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)

    def log_path(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"
