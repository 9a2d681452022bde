"""python -m bench [--quick] [--out DIR] [--iterations N] [--sizes 1000,10000,100000]
[--only SECTION ...]: run the benchmark, write DIR/latest.json and DIR/latest.md."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from bench.plan import SECTIONS, make_plan

# Only light imports at the top: the lean generator's client processes (multiprocessing,
# spawn) import this module again as __mp_main__.
REPO = Path(__file__).resolve().parent.parent


def _sizes(text: str) -> tuple[int, ...]:
    return tuple(int(part.replace("_", "")) for part in text.split(",") if part.strip())


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny counts, for CI smoke runs")
    parser.add_argument(
        "--out", type=Path, default=REPO / "bench" / "results", help="report directory"
    )
    parser.add_argument("--iterations", type=int, help="timed calls per sequential measurement")
    parser.add_argument("--sizes", type=_sizes, help="seeded session sizes, e.g. 1000,10000")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="measure only these sections")
    parser.add_argument("--keep", action="store_true", help="keep the data directory and logs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import anyio

    from bench import machine, report, run
    from bench.measure import say

    args = parse(sys.argv[1:] if argv is None else argv)
    plan = make_plan(args.quick, args.iterations, args.sizes)
    only = tuple(args.only) if args.only else SECTIONS
    results: dict[str, Any] = {
        "schema": 1,
        "command": shlex.join(["python", "-m", "bench", *(sys.argv[1:] if argv is None else argv)]),
        "machine": machine.describe(REPO),
        "plan": {"only": list(only), **{k: getattr(plan, k) for k in plan.__slots__}},
    }
    results |= anyio.run(run.run, plan, only, args.keep)
    json_path, md_path = report.write(results, args.out)
    errors = sum(r.get("errors", 0) for s in results["sections"].values() for r in s["rows"])
    say(f"wrote {md_path} and {json_path} in {results['duration_s']} s; errors: {errors}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
