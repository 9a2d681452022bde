"""One line about a conformance run: what passed, what was expected to fail, what was not.

Usage: ``python tests/conformance/summarize.py RESULTS_DIR EXPECTED_FAILURES_YML``

``RESULTS_DIR`` is the ``-o`` directory of ``conformance server`` (one ``server-<scenario>-
<timestamp>/checks.json`` per scenario). The suite itself decides pass/fail against the
expected-failures file; this only reports, and names any scenario that failed unexpectedly.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

_SCENARIO_DIR = re.compile(r"^server-(?P<name>.+)-\d{4}-\d\d-\d\dT[\d-]+Z$")
_ENTRY = re.compile(r"^\s*-\s*(?P<entry>[\w.:-]+)\s*(?:#.*)?$")
_BAD = {"FAILURE", "WARNING"}


def expected_entries(path: Path) -> tuple[set[str], set[tuple[str, str]]]:
    scenarios: set[str] = set()
    checks: set[tuple[str, str]] = set()
    section = None
    for line in path.read_text().splitlines():
        if re.match(r"^\w+:", line):
            section = line.split(":", 1)[0]
            continue
        match = _ENTRY.match(line)
        if section != "server" or match is None:
            continue
        scenario, _, check = match["entry"].partition(":")
        if check:
            checks.add((scenario, check))
        else:
            scenarios.add(scenario)
    return scenarios, checks


def summarize(results: Path, expected: Path) -> str:
    expected_scenarios, expected_checks = expected_entries(expected)
    passed: list[str] = []
    partial: list[str] = []
    expected_failed: list[str] = []
    unexpected: list[str] = []
    total_checks = 0
    for checks_file in sorted(results.glob("*/checks.json")):
        match = _SCENARIO_DIR.match(checks_file.parent.name)
        name = match["name"] if match else checks_file.parent.name
        checks = json.loads(checks_file.read_text())
        total_checks += len(checks)
        bad = {c["id"] for c in checks if c["status"] in _BAD}
        if name in expected_scenarios:
            if bad:
                expected_failed.append(name)
            else:
                unexpected.append(f"{name} (stale entry: it passes)")
        elif not bad:
            passed.append(name)
        elif bad <= {check for scenario, check in expected_checks if scenario == name}:
            partial.append(f"{name} ({len(bad)} expected)")
        else:
            unexpected.append(name)
    parts = [f"{len(passed) + len(partial)} scenarios passed"]
    if partial:
        parts[0] += f" (with expected check failures: {', '.join(partial)})"
    parts.append(f"{len(expected_failed)} expected failures")
    parts.append(f"{len(unexpected)} unexpected")
    if unexpected:
        parts[-1] += ": " + ", ".join(unexpected)
    return ", ".join(parts) + f"; {total_checks} checks"


if __name__ == "__main__":
    print(summarize(Path(sys.argv[1]), Path(sys.argv[2])))
