"""Search quality and its latency (issue 9): recall@3 of the labelled typo queries of
``tests/services/search_quality.json``, and p50/p95 of their ``search_context`` calls, in
sessions of 1,000, 10,000 and 100,000 messages.

Each session holds the labelled messages (public, spread evenly through it, so most are
far older than the newest hundred) among seeded chatter (``bench.seed``'s rows, bulk-inserted
like the sequential sessions), whose text and metadata use the benchmark's vocabulary less
every word of a labelled message: "cache invalidaton" must find its message, not one of
thousands of random ones that also say "cache invalidation". Near misses stay ("invalid",
"eviction", "token"). Each query is one call through the official client over streamable
HTTP with ``limit`` 3; a hit is the intended message among those three.
"""

from __future__ import annotations

import json
import random
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.clients import http_client
from bench.context import READER, Bench
from bench.measure import Samples, say
from bench.seed import BATCH, SEEDER, _rows, settings_for
from bench.stats import summarize
from bench.text import WORDS
from shared_context_server.app import open_app
from shared_context_server.storage.tables import messages

LABELLED = Path(__file__).resolve().parent.parent / "tests" / "services" / "search_quality.json"
TOP = 3
WARMUP = 3
MISSES_SHOWN = 5


@dataclass(frozen=True, slots=True)
class Query:
    text: str
    kind: str
    expect: int  # the intended message's id


def labelled() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(LABELLED.read_text())
    return data


async def _seed(bench: Bench, size: int) -> tuple[str, list[Query]]:
    """A session of ``size`` messages: the labelled ones spread evenly among chatter."""
    data = labelled()
    app = await open_app(settings_for(bench.data_dir, bench.creds))
    try:
        session = await app.sessions.create(SEEDER, f"bench: search quality, {size} messages")
        rng = random.Random(size)
        rows = _rows(session.id, size - len(data["messages"]), rng)
        taken = {w for m in data["messages"] for w in re.findall(r"\w+", m["content"].lower())}
        vocabulary = [w for w in WORDS if w not in taken]
        for row in rows:
            row["content"] = " ".join(rng.choices(vocabulary, k=rng.randint(10, 60)))
            row["metadata"] = {"file": "/".join(rng.sample(vocabulary, 2)) + ".py"}
        step = max(1, len(rows) // len(data["messages"]))
        start = datetime.now(UTC) - timedelta(seconds=size + 10)
        for n, m in enumerate(data["messages"]):
            rows.insert(
                min(len(rows), n * (step + 1) + step // 2),
                {
                    **rows[0],
                    "sender": m["sender"],
                    "content": m["content"],
                    "metadata": {},
                    "message_type": "message",
                    "visibility": "public",
                },
            )
        for i, row in enumerate(rows):  # ids and times in the order of the list
            row["created_at"] = start + timedelta(seconds=i)
        with app.store.engine.begin() as conn:
            for at in range(0, len(rows), BATCH):
                conn.execute(sa.insert(messages), rows[at : at + BATCH])
            found = conn.execute(
                sa.select(messages.c.id, messages.c.content).where(
                    messages.c.session_id == session.id,
                    messages.c.content.in_([m["content"] for m in data["messages"]]),
                )
            ).all()
    finally:
        await app.store.close()
    id_of = {content: int(i) for i, content in found}
    key_id = {m["key"]: id_of[m["content"]] for m in data["messages"]}
    queries = [Query(q["query"], q["kind"], key_id[q["expect"]]) for q in data["queries"]]
    return session.id, queries


async def _measure(bench: Bench, size: int) -> dict[str, Any]:
    session_id, queries = await _seed(bench, size)
    queries = queries[:: bench.plan.search_query_step]
    samples = Samples()
    found = 0
    misses: list[str] = []
    async with http_client(bench.ours.url, bench.tokens[READER]) as client:

        async def search(query: Query) -> list[int] | str:
            arguments = {"session_id": session_id, "query": query.text, "limit": TOP}
            result = await client.call_tool("search_context", arguments)
            if result.is_error:
                return f"search_context: {result.structured_content or result.content}"
            hits = (result.structured_content or {}).get("hits", [])
            return [int(h["message"]["id"]) for h in hits]

        for query in queries[:WARMUP]:
            await search(query)
        for query in queries:
            started = time.perf_counter()
            try:
                got = await search(query)
            except Exception as exc:  # a transport failure is an error of this measurement
                got = f"{type(exc).__name__}: {exc}"
            if isinstance(got, str):
                samples.failed(got)
                continue
            samples.latencies.append(time.perf_counter() - started)
            if query.expect in got:
                found += 1
            else:
                misses.append(f"{query.text} ({query.kind})")
    row: dict[str, Any] = {
        "name": f"search_context recall@{TOP} ({size:,} msgs)",
        "op": "search_quality",
        "server": "ours",
        "size": size,
        "queries": len(queries),
        "found": found,
        "recall_at_3": round(found / len(queries), 3) if queries else None,
        "misses": misses[:MISSES_SHOWN],
    }
    row.update(summarize(samples.latencies, samples.errors))
    if samples.first_error:
        row["first_error"] = samples.first_error
    say(
        f"  {row['name']}: {found}/{len(queries)}, p50 {row.get('p50_ms')} ms, "
        f"p95 {row.get('p95_ms')} ms"
    )
    return row


async def run(bench: Bench) -> dict[str, Any]:
    rows = [await _measure(bench, size) for size in bench.plan.search_sizes]
    return {
        "client": "official mcp client (mcp Python SDK), one connection, one call at a time",
        "transport": "streamable HTTP",
        "rows": rows,
    }


def markdown(section: dict[str, Any], target: Any) -> str:
    """The section's table; ``target`` renders a row's target verdicts."""

    def ms(value: Any) -> str:
        return "-" if value is None else f"{value:,.2f}"

    lines = [
        f"{section['client']}; {section['transport']}. The labelled typo queries of "
        "`tests/services/search_quality.json`, each one `search_context` call with limit "
        f"{TOP}, in a session where its intended message sits among seeded chatter; recall "
        f"is the share of queries whose intended message is among the {TOP} hits.",
        "",
        f"| measurement | queries | recall@{TOP} | p50 ms | p95 ms | p99 ms | errors "
        "| first misses | target |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in section["rows"]:
        misses = "; ".join(r.get("misses", [])) or "-"
        lines.append(
            f"| {r['name']} | {r['queries']} | {r.get('recall_at_3')} | {ms(r.get('p50_ms'))} "
            f"| {ms(r.get('p95_ms'))} | {ms(r.get('p99_ms'))} | {r.get('errors', 0)} "
            f"| {misses} | {target(r)} |"
        )
    return "\n".join(lines)
