#!/usr/bin/env bash
# Runs tasklane's browser-side tests: the JS client, the React adapter and the pages, against
# the real task-http binary, with node's test runner and Debian's Chromium (playwright-core).
#
# Installs what it needs (npm packages from package-lock.json; chromium with apt-get when
# /usr/bin/chromium is missing, which needs root), builds the binary, runs every *.test.js
# file one after another and exits non-zero when any test fails. Screenshots of failing page
# tests go to tests/browser/screenshots/.
#
#   bash tests/browser/run.sh                 # everything
#   bash tests/browser/run.sh client.test.js  # some files
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$node_major" -lt 20 ]; then
  echo "run.sh: Node.js 20 or newer is required (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  echo "run.sh: installing chromium with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi
# dashboard.test.js seeds 100,000 tasks straight into the database file with the sqlite3 shell.
if ! command -v sqlite3 >/dev/null; then
  echo "run.sh: installing sqlite3 with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq sqlite3 >/dev/null
fi

echo "run.sh: npm ci"
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)

# `cargo test` passes the binary it built (bins/tasklane/tests/it/browser.rs); run by hand,
# the script builds it.
if [ -z "${TASKLANE_BIN:-}" ] || [ ! -x "$TASKLANE_BIN" ]; then
  echo "run.sh: cargo build --bin task-http"
  (cd "$repo" && cargo build --quiet --bin task-http)
  target_dir="${CARGO_TARGET_DIR:-target}"
  case "$target_dir" in /*) ;; *) target_dir="$repo/$target_dir" ;; esac
  export TASKLANE_BIN="$target_dir/debug/task-http"
fi

rm -rf "$here/screenshots"
cd "$here"
if [ "$#" -gt 0 ]; then
  files=("$@")
else
  files=(*.test.js)
fi
# One file at a time: each starts its own server, and the machine has two cores.
exec node --test --test-concurrency=1 --test-reporter=spec "${files[@]}"
