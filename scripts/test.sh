#!/usr/bin/env bash
# Set up and run every check: lint, format, types, tests with coverage, MCP conformance.
# Environment: SCS_TEST_START_TIMEOUT (seconds a test waits for a server it starts, default
# 90); SCS_REQUIRE_POSTGRES, SCS_REQUIRE_CLIENTS, SCS_REQUIRE_HAPROXY and SCS_REQUIRE_BROWSER
# (set by .ci/run) make a missing PostgreSQL, npm client, HAProxy or Chromium a failure
# instead of a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Debian packages some tests drive: HAProxy in front of the server (tests/deploy) and
# Chromium for the dashboard's browser tests (tests/web; Playwright's own download fails).
missing=()
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
command -v chromium >/dev/null || [ -x /usr/bin/chromium ] || missing+=(chromium)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "== installing ${missing[*]}"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") \
            >/dev/null || echo "could not install ${missing[*]}: their tests fail or skip"
    else
        echo "${missing[*]} missing (apt-get install ${missing[*]}): their tests fail or skip"
    fi
fi
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
