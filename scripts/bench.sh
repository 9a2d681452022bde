#!/usr/bin/env bash
# Set up .venv and run the benchmark: writes bench/results/latest.json and latest.md.
# Arguments go to `python -m bench` (--quick, --out DIR, --iterations N, --sizes, --only).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m bench "$@"
