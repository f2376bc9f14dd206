#!/usr/bin/env bash
# Bounded fuzzing of guestlist's parsers (fuzz/, cargo-fuzz with libFuzzer on the nightly toolchain).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]     (default 15)
#
# Installs cargo-fuzz when missing (the nightly toolchain must be installed: rustup toolchain install nightly),
# builds every target, runs each for SECONDS_PER_TARGET over a scratch copy of its corpus (fuzz/corpus/<target>/
# is read, never written: inputs worth keeping are copied there by hand), and prints per target the inputs run
# and the crashes found. Exit status: non-zero when a target crashed (the input is in fuzz/artifacts/<target>/).
set -euo pipefail

SECONDS_PER_TARGET=${1:-15}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT/fuzz"

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz: no nightly toolchain; installing it (rustup toolchain install nightly --profile minimal)"
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi

build_start=$(date +%s)
cargo +nightly fuzz build
echo "fuzz: targets built in $(( $(date +%s) - build_start ))s"

mkdir -p target/fuzz-logs
failed=0
total_runs=0
declare -a rows=()
for target in $(cargo +nightly fuzz list); do
  work="target/corpus-work/$target"
  log="target/fuzz-logs/$target.log"
  mkdir -p "$work"
  set +e
  # -timeout: an input taking 10 s counts as a crash (a hang); -rss_limit_mb likewise for memory.
  cargo +nightly fuzz run "$target" "$work" "corpus/$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" -max_len=8192 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1
  rc=$?
  set -e
  runs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log" | tail -1)
  runs=${runs:-0}
  total_runs=$(( total_runs + runs ))
  if [[ $rc -eq 0 ]]; then
    crashes=0
  else
    crashes=1
    failed=1
    echo "---- $target crashed (exit $rc); tail of $log:"
    grep -E "panicked|ERROR|SUMMARY|artifact_prefix|Test unit written" "$log" | head -8 || tail -20 "$log"
  fi
  rows+=("$(printf '  %-18s inputs run %10s   crashes %s' "$target" "$runs" "$crashes")")
done

echo
echo "fuzz: ${SECONDS_PER_TARGET}s per target"
printf '%s\n' "${rows[@]}"
echo "  total inputs run: $total_runs"
exit $failed
