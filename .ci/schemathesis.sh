#!/usr/bin/env bash
# Spec = server: runs schemathesis (property-based, all checks) against docs/openapi.yaml and the
# real task-http binary on a throwaway SQLite database, with a fixed seed and a bounded budget.
# Exits non-zero on any failure. Installs the pinned schemathesis into a venv when missing.
#
#   .ci/schemathesis.sh                  # the CI run
#   ST_MAX_EXAMPLES=200 ST_SEED=7 .ci/schemathesis.sh   # a longer or different run by hand
set -euo pipefail
cd "$(dirname "$0")/.."

version=4.32.5
venv="${SCHEMATHESIS_VENV:-target/schemathesis-venv}"
if ! "$venv/bin/st" --version 2>/dev/null | grep -q "$version"; then
  echo "installing schemathesis $version into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "schemathesis==$version"
fi

cargo build --quiet --bin task-http
bin=target/debug/task-http
work="$(mktemp -d)"
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# A superuser, so that every operation (metrics, the dashboard, other users' listings) is reached.
token="$(TASKLANE_DB="$work/st.db" "$bin" user add fuzz@example.com --superuser | tail -n 1)"

# Port 0: the kernel picks a free port and the server logs the one it got.
TASKLANE_DB="$work/st.db" RUST_LOG=info "$bin" --log-format json serve --addr 127.0.0.1:0 --test-tasks \
  --max-queued-per-user 100000 --max-sse-per-user 1000 --monitor-timeout 1s \
  >"$work/stdout" 2>"$work/stderr" &
server=$!
addr=""
for _ in $(seq 1 100); do
  addr="$(grep -o '"addr":"127\.0\.0\.1:[0-9]*"' "$work/stderr" | head -n 1 | cut -d'"' -f4 || true)"
  [ -n "$addr" ] && break
  kill -0 "$server" 2>/dev/null || { cat "$work/stderr"; echo "the server did not start"; exit 1; }
  sleep 0.1
done
[ -n "$addr" ] || { cat "$work/stderr"; echo "the server did not report its address"; exit 1; }

status=0
# One worker: with two, Hypothesis's per-thread recursion-limit bookkeeping races (one thread
# restores the default limit while the other is deep in a draw), which on this CPython (3.11.7)
# surfaces now and then as "SystemError: AST constructor recursion depth mismatch" in the
# coverage phase: a crash of the fuzzer, not a finding about the server.
# Left out, each for a reason the spec cannot carry:
# - `/api/ws` is a WebSocket upgrade, which OpenAPI cannot describe beyond its refusals: its
#   protocol is docs/asyncapi.yaml, checked by crates/task-http/tests/it/ws.rs.
# (`/api/schedules*` and `/api/workflows*` are in: their rules the spec states in words only, a
# cron grammar, IANA zones and graph rules, are met by the generating hooks in
# .ci/schemathesis_hooks.py.)
"$venv/bin/st" --no-color --config-file .ci/schemathesis.toml run docs/openapi.yaml \
  --url "http://$addr" \
  --exclude-path /api/ws \
  --header "Authorization: Bearer $token" \
  --checks all \
  --seed "${ST_SEED:-20261206}" \
  --max-examples "${ST_MAX_EXAMPLES:-40}" \
  --workers 1 \
  --request-timeout 3 || status=$?
if grep -q 'panicked' "$work/stderr"; then
  grep -B2 -A10 'panicked' "$work/stderr"
  echo "the server panicked during the run"
  status=1
fi
exit "$status"
