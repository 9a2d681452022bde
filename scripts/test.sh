#!/usr/bin/env bash
# Set up and run every check: lint, format, types, tests with coverage, MCP conformance.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== ruff check";  .venv/bin/ruff check src tests bench
echo "== ruff format"; .venv/bin/ruff format --check src tests bench
echo "== mypy";        .venv/bin/mypy && .venv/bin/mypy --strict bench
echo "== pytest"
.venv/bin/pytest --cov --cov-report=term --cov-report=xml "$@"
echo "== MCP conformance"; bash scripts/conformance.sh
