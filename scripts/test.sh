#!/usr/bin/env bash
# Set up and run every check: lint, format, types, tests with coverage, MCP conformance.
# Environment: SCS_TEST_START_TIMEOUT (seconds a test waits for a server it starts, default
# 90); SCS_REQUIRE_POSTGRES and SCS_REQUIRE_CLIENTS (set by .ci/run) make a missing PostgreSQL
# or npm client a failure instead of a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== ruff check";  .venv/bin/ruff check src tests bench
echo "== ruff format"; .venv/bin/ruff format --check src tests bench
echo "== mypy";        .venv/bin/mypy && .venv/bin/mypy --strict bench
echo "== pytest"
started=$SECONDS
# --durations: the 25 slowest tests, where the suite's time goes.
status=0
.venv/bin/pytest --cov --cov-report=term --cov-report=xml --durations=25 "$@" || status=$?
echo "== pytest wall time: $((SECONDS - started)) s"
[ "$status" -eq 0 ] || exit "$status"
echo "== MCP conformance"; bash scripts/conformance.sh
echo "== total wall time: ${SECONDS} s"
