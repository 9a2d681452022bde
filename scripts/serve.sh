#!/usr/bin/env bash
# Set up and start the server on its embedded default: SQLite in the data directory,
# streamable HTTP on 127.0.0.1:23456/mcp. Extra arguments go to `scs serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/scs serve --transport http "$@"
