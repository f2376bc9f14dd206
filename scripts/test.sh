#!/usr/bin/env bash
# Run all tests: Rust workspace (SQLite + PostgreSQL), then the real Microsoft clients
# (Python: msal, azure-identity, msgraph-sdk; Node: @microsoft/microsoft-graph-client) against the
# real server binary.
#
#   scripts/test.sh
#
# PostgreSQL: uses GUESTLIST_TEST_DATABASE_URL when set (a superuser-ish URL: the suites create and
# drop their own databases); otherwise starts a throwaway server (scripts/throwaway-postgres.sh).
# GUESTLIST_SKIP_CARGO_TEST=1, GUESTLIST_SKIP_FUZZ=1, GUESTLIST_SKIP_FAULTS=1, GUESTLIST_SKIP_PYTHON=1,
# GUESTLIST_SKIP_NODE=1, GUESTLIST_SKIP_E2E=1 skip a suite (for quick
# local iterations; the build always runs).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

declare -a SUMMARY=()
FAILED=0
T0=$(date +%s)

# run_step NAME CMD...: runs CMD in a subshell with errexit, records status and duration in
# SUMMARY and its exit code in LAST_RC. Always returns 0: call it as a plain statement, never in
# `if`/`&&`/`||`, where bash would ignore errexit inside CMD.
LAST_RC=0
run_step() {
  local name=$1; shift
  local start rc
  start=$(date +%s)
  echo
  echo "==> $name"
  set +e
  ( set -euo pipefail; "$@" )
  rc=$?
  set -e
  local took=$(( $(date +%s) - start ))
  if [[ $rc -eq 0 ]]; then
    SUMMARY+=("$(printf '  %-34s ok      %4ss' "$name" "$took")")
  else
    SUMMARY+=("$(printf '  %-34s FAILED  %4ss  (exit %s)' "$name" "$took" "$rc")")
    FAILED=1
  fi
  LAST_RC=$rc
}

skip_step() {
  SUMMARY+=("$(printf '  %-34s skipped        (%s)' "$1" "$2")")
}

print_summary() {
  echo
  echo "==> summary ($(( $(date +%s) - T0 ))s)"
  printf '%s\n' "${SUMMARY[@]}"
  if [[ $FAILED -eq 0 ]]; then echo "ALL TESTS PASSED"; else echo "SOME TESTS FAILED"; fi
}

# ---------------------------------------------------------------- (a) PostgreSQL
start_postgres() {
  # Sourced (not run in a subshell) so the URL and the stop trap belong to this shell.
  # shellcheck source=scripts/throwaway-postgres.sh
  source "$ROOT/scripts/throwaway-postgres.sh"
}

pg_start=$(date +%s)
if [[ -n "${GUESTLIST_TEST_DATABASE_URL:-}" ]]; then
  skip_step "postgres (throwaway)" "using GUESTLIST_TEST_DATABASE_URL"
elif start_postgres; then
  SUMMARY+=("$(printf '  %-34s ok      %4ss' "postgres (throwaway)" "$(( $(date +%s) - pg_start ))")")
else
  SUMMARY+=("$(printf '  %-34s FAILED  %4ss' "postgres (throwaway)" "$(( $(date +%s) - pg_start ))")")
  FAILED=1
  unset GUESTLIST_TEST_DATABASE_URL
fi
# Whatever happens below, print the summary last.
if [[ -n "${THROWAWAY_PG_DIR:-}" ]]; then
  trap 'print_summary; throwaway_pg_stop' EXIT
else
  trap 'print_summary' EXIT
fi

# ---------------------------------------------------------------- (b) Rust
export GUESTLIST_BIN="$ROOT/target/debug/guestlist"
BUILD_OK=0
run_step "cargo build --workspace" cargo build --workspace --quiet
if [[ $LAST_RC -eq 0 ]]; then BUILD_OK=1; fi
# The Rust mail tests run a real SMTP server, aiosmtpd (pinned in compat/python/requirements.txt),
# from the compat venv; with GUESTLIST_REQUIRE_SMTP=1 they fail instead of skipping without it.
smtp_env() {
  cd "$ROOT/compat/python"
  [[ -x .venv/bin/python ]] || python3 -m venv .venv
  .venv/bin/python -c 'import aiosmtpd' 2>/dev/null \
    || .venv/bin/python -m pip install --quiet --disable-pip-version-check "$(grep '^aiosmtpd==' requirements.txt)"
}
run_step "smtp server for tests (aiosmtpd)" smtp_env
if [[ $LAST_RC -eq 0 ]]; then
  export GUESTLIST_TEST_PYTHON="$ROOT/compat/python/.venv/bin/python" GUESTLIST_REQUIRE_SMTP=1
fi
if [[ "${GUESTLIST_SKIP_CARGO_TEST:-}" == 1 ]]; then
  skip_step "cargo test --workspace" "GUESTLIST_SKIP_CARGO_TEST=1"
elif [[ $BUILD_OK -eq 1 ]]; then
  run_step "cargo test --workspace" cargo test --workspace --quiet
else
  skip_step "cargo test --workspace" "build failed"
fi

# ---------------------------------------------------------------- (b2) bounded fuzzing
# scripts/fuzz.sh: every cargo-fuzz target for 15 s (nightly toolchain; installs cargo-fuzz if missing).
if [[ "${GUESTLIST_SKIP_FUZZ:-}" == 1 ]]; then
  skip_step "fuzz (bounded)" "GUESTLIST_SKIP_FUZZ=1"
else
  run_step "fuzz (bounded)" "$ROOT/scripts/fuzz.sh"
fi

# ---------------------------------------------------------------- (b3) faults with replicas
# crates/server/tests/faults.rs: two real servers on a PostgreSQL cluster of the test's own (it
# kills one with -9, restarts PostgreSQL, races a redemption against a reset) and prints the
# figures (acknowledged, lost, duplicated, 503s, other 5xx, latency, recovery). It needs Debian's
# PostgreSQL server binaries; GUESTLIST_SKIP_FAULTS=1 skips it.
faults_tests() {
  GUESTLIST_FAULTS_PG_BIN=$1 timeout 900 cargo test -p guestlist --test faults --quiet -- --nocapture --test-threads=1
}
FAULTS_PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [[ "${GUESTLIST_SKIP_FAULTS:-}" == 1 ]]; then
  skip_step "faults with replicas" "GUESTLIST_SKIP_FAULTS=1"
elif [[ $BUILD_OK -ne 1 ]]; then
  skip_step "faults with replicas" "build failed"
elif [[ -z "$FAULTS_PG_BIN" || ! -x "$FAULTS_PG_BIN/pg_ctl" ]]; then
  SUMMARY+=("$(printf '  %-34s FAILED        (no /usr/lib/postgresql/*/bin/pg_ctl: apt-get install postgresql)' "faults with replicas")")
  FAILED=1
else
  run_step "faults with replicas" faults_tests "$FAULTS_PG_BIN"
fi

# ---------------------------------------------------------------- (c) Python compat
PY_DIR="$ROOT/compat/python"
python_env() {
  cd "$PY_DIR"
  [[ -x .venv/bin/python ]] || python3 -m venv .venv
  local want have=""
  want=$(sha256sum requirements.txt | cut -d' ' -f1)
  [[ -f .venv/.requirements.sha256 ]] && have=$(cat .venv/.requirements.sha256)
  if [[ "$want" != "$have" ]]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
    echo "$want" > .venv/.requirements.sha256
  else
    echo "venv up to date"
  fi
}
python_tests() {
  cd "$PY_DIR"
  .venv/bin/python -m pytest -q -p no:cacheprovider
}

# ---------------------------------------------------------------- (d) Node compat
NODE_DIR="$ROOT/compat/node"
node_env() {
  cd "$NODE_DIR"
  local want have=""
  want=$(sha256sum package-lock.json | cut -d' ' -f1)
  [[ -f node_modules/.lock.sha256 ]] && have=$(cat node_modules/.lock.sha256)
  if [[ "$want" != "$have" ]]; then
    npm ci --no-audit --no-fund --loglevel=error
    echo "$want" > node_modules/.lock.sha256
  else
    echo "node_modules up to date"
  fi
}
node_tests() {
  cd "$NODE_DIR"
  npm test --silent
}

if [[ "${GUESTLIST_SKIP_PYTHON:-}" == 1 ]]; then
  skip_step "python compat" "GUESTLIST_SKIP_PYTHON=1"
else
  run_step "python venv (pip install)" python_env
  if [[ $LAST_RC -ne 0 ]]; then skip_step "python compat (pytest)" "venv failed"
  elif [[ $BUILD_OK -ne 1 ]]; then skip_step "python compat (pytest)" "build failed"
  else run_step "python compat (pytest)" python_tests; fi
fi

if [[ "${GUESTLIST_SKIP_NODE:-}" == 1 ]]; then
  skip_step "node compat" "GUESTLIST_SKIP_NODE=1"
else
  run_step "node deps (npm ci)" node_env
  if [[ $LAST_RC -ne 0 ]]; then skip_step "node compat (npm test)" "npm ci failed"
  elif [[ $BUILD_OK -ne 1 ]]; then skip_step "node compat (npm test)" "build failed"
  else run_step "node compat (npm test)" node_tests; fi
fi

# ---------------------------------------------------------------- (d2) browser end-to-end
# e2e/: the redemption flow in Debian's headless Chromium (playwright-core with executablePath),
# mail read from a real SMTP server (smtp-server), on SQLite and, when set, PostgreSQL.
# Screenshots of every page land in artifacts/screenshots/. GUESTLIST_SKIP_E2E=1 skips it.
E2E_DIR="$ROOT/e2e"
e2e_env() {
  cd "$E2E_DIR"
  local want have=""
  want=$(sha256sum package-lock.json | cut -d' ' -f1)
  [[ -f node_modules/.lock.sha256 ]] && have=$(cat node_modules/.lock.sha256)
  if [[ "$want" != "$have" ]]; then
    npm ci --no-audit --no-fund --loglevel=error
    echo "$want" > node_modules/.lock.sha256
  else
    echo "node_modules up to date"
  fi
}
e2e_tests() {
  cd "$E2E_DIR"
  npm test --silent
}

if [[ "${GUESTLIST_SKIP_E2E:-}" == 1 ]]; then
  skip_step "browser e2e" "GUESTLIST_SKIP_E2E=1"
elif [[ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]]; then
  SUMMARY+=("$(printf '  %-34s FAILED        (no Chromium at %s: apt-get install chromium)' "browser e2e" "${CHROMIUM_PATH:-/usr/bin/chromium}")")
  FAILED=1
else
  run_step "e2e deps (npm ci)" e2e_env
  if [[ $LAST_RC -ne 0 ]]; then skip_step "browser e2e (npm test)" "npm ci failed"
  elif [[ $BUILD_OK -ne 1 ]]; then skip_step "browser e2e (npm test)" "build failed"
  else run_step "browser e2e (npm test)" e2e_tests; fi
fi

# ---------------------------------------------------------------- (e) benchmark smoke
# bench/run --smoke: a few seconds on 1k users, SQLite only, debug build; it fails only when the
# harness itself breaks (a route, the seeding, wrk), never on speed. The full run: BENCHMARKS.md.
if [[ $BUILD_OK -eq 1 ]]; then
  run_step "bench smoke" "$ROOT/bench/run" --smoke
else
  skip_step "bench smoke" "build failed"
fi

exit $FAILED
