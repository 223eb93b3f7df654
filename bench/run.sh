#!/usr/bin/env bash
# Builds voltgate and the benchmark, then measures MQTT → GraphQL subscription
# latency with the defaults (see docs/performance.md). Extra arguments go to
# `bay-latency`, e.g. `bench/run.sh --seconds 5 --skip-search`.
#
# BENCH_PROFILE=dev uses debug builds: quick to build, for checking the harness
# only (its figures say nothing about production performance).
set -euo pipefail

cd "$(dirname "$0")/.."
profile="${BENCH_PROFILE:-release}"
case "$profile" in
  release) build_flags=(--release); dir=release ;;
  dev | debug) build_flags=(); dir=debug ;;
  *) echo "BENCH_PROFILE must be release or dev, got '$profile'" >&2; exit 2 ;;
esac

cargo build "${build_flags[@]}" -p voltgate -p voltgate-bench

# The server and the harness each hold ~1,000 sockets: make sure both may.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

target_dir="${CARGO_TARGET_DIR:-target}"
exec "$target_dir/$dir/bay-latency" "$@"
