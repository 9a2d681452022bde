"""Timing loops shared by the sections: warm up, then time each call."""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bench.stats import summarize

if TYPE_CHECKING:  # imported by the lean generator's client processes: keep it light
    from mcp import Client

    from bench.plan import Plan

# One call (or round trip) of a measurement; i counts from 0. Returns an error text or None.
Call = Callable[[int], Awaitable[str | None]]

WARMUP_BUDGET_S = 3.0


@dataclass
class Samples:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None

    def failed(self, error: str) -> None:
        self.errors += 1
        self.first_error = self.first_error or error[:300]

    async def take(self, call: Call, i: int) -> None:
        """Time one call: its latency, or its error."""
        elapsed, error = await _once(call, i)
        if error:
            self.failed(error)
        else:
            self.latencies.append(elapsed)


def tool(client: Client, name: str, arguments: Callable[[int], dict[str, Any]]) -> Call:
    """A Call that invokes one tool; an error result counts as an error."""

    async def run(i: int) -> str | None:
        result = await client.call_tool(name, arguments(i))
        if result.is_error:
            return f"{name}: {result.structured_content or result.content}"
        return None

    return run


async def _once(call: Call, i: int) -> tuple[float, str | None]:
    started = time.perf_counter()
    try:
        error = await call(i)
    except Exception as exc:  # a transport failure is an error of this measurement too
        error = f"{type(exc).__name__}: {exc}"
    return time.perf_counter() - started, error


async def paired(call: Call, floor: Call, plan: Plan) -> tuple[Samples, Samples]:
    """Warm-up calls (not timed, errors counted, at most WARMUP_BUDGET_S), then timed calls
    one after another, each following one timed call of the floor: both sides see the same
    moment of the machine, so their ratio holds while its load drifts (a 2-core one's does)."""
    ours, base = Samples(), Samples()
    deadline = time.perf_counter() + WARMUP_BUDGET_S
    for i in range(plan.warmup):
        for side, run in ((base, floor), (ours, call)):
            _, error = await _once(run, i)
            if error:
                side.failed(error)
        if time.perf_counter() > deadline:
            break
    deadline = time.perf_counter() + plan.budget_s
    for n in range(plan.iterations):
        for side, run in ((base, floor), (ours, call)):
            await side.take(run, plan.warmup + n)
        if time.perf_counter() > deadline and len(ours.latencies) >= plan.min_samples:
            break
    return ours, base


def say(text: str) -> None:
    """Progress on stderr; the report is the output."""
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def measured(result: dict[str, Any], samples: Samples) -> dict[str, Any]:
    """Adds the latency summary and errors to a row, and says what was measured."""
    result.update(summarize(samples.latencies, samples.errors))
    if samples.first_error:
        result["first_error"] = samples.first_error
    rate = f", {result['throughput']:,.1f} calls/s" if "throughput" in result else ""
    errors = f", {samples.errors} ERRORS: {samples.first_error}" if samples.errors else ""
    say(f"  {result['name']}: p50 {result.get('p50_ms')} ms, n {result['n']}{rate}{errors}")
    return result


def row(name: str, op: str, samples: Samples, **attributes: Any) -> dict[str, Any]:
    """A report row: what was measured, its latency summary and any errors."""
    return measured({"name": name, "op": op, **attributes}, samples)
