"""Realistic message text from a fixed vocabulary, and search queries that hit it.

Kept free of heavy imports: the lean generator's client processes import it.
"""

from __future__ import annotations

import random

VOCABULARY = """
agent analysis api architecture assertion async audit backend benchmark branch bug build
cache callback change checkout ci cli client commit config connection container context
coverage cursor database deadlock debug decision dependency deploy diff docker endpoint
error event exception feature fixture flaky function handler header index integration
interface issue json latency lint lock log memory merge message metric middleware migration
mock module network null optimise package parser patch payload performance permission
pipeline plan pool process profile protocol query queue race refactor regression release
request resource response retry review rollback route runtime schema search secret server
service session snapshot socket sql stack status storage stream subscription sync table
task test thread throughput timeout token trace transaction type update upgrade validation
version worker workflow the a an and or but so because while after before when then also
not only all each every some many few more less first last next previous new old same other
is was were be been has have had will would should could might must can may does did done
found fixed added removed changed moved renamed checked tested measured confirmed failed
passed broke works slow fast large small empty full invalid missing stale wrong correct
key value file line column row field name id user team owner holder reader writer sender
note finding result summary reason proposal question answer idea risk blocker estimate
we i it they you this that these those there here now today yesterday tomorrow soon later
in on at by for from with without into over under between through about against across
src tests docs scripts main feature/login hotfix utils models views controllers services
python sqlite postgres redis nginx uvicorn starlette fastmcp pydantic alembic pytest ruff
mypy typer rapidfuzz jwt http stdio sse websocket grpc kafka s3 kubernetes terraform
orchestrator planner coder reviewer tester researcher operator subagent handoff blackboard
invalidation eviction expiry ttl heartbeat fencing lease quorum replica shard partition
"""
WORDS = VOCABULARY.split()
# Words that occur in the seeded text, and a typo of one (search is fuzzy).
SEARCH_QUERIES = ("cache invalidation", "deadlock retry", "migration", "databse timeout")


def sentence(rng: random.Random, low: int = 10, high: int = 60) -> str:
    return " ".join(rng.choices(WORDS, k=rng.randint(low, high)))


def message_text(i: int) -> str:
    """Varied text of 30 words for posts made during the run; deterministic so runs compare."""
    return " ".join(WORDS[(i * 7 + k * 13) % len(WORDS)] for k in range(30))
