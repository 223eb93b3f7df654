#!/usr/bin/env bash
# Builds voltgate and replays hostile GraphQL requests against it: fragment
# fan-out, huge batches, a flood (see docs/performance.md). An optional argument
# sets the flood's seconds (default 10). BENCH_PROFILE=dev uses debug builds,
# for a quick check of the harness only.
set -euo pipefail

cd "$(dirname "$0")/.."
profile="${BENCH_PROFILE:-release}"
case "$profile" in
  release) build_flags=(--release); dir=release ;;
  dev | debug) build_flags=(); dir=debug ;;
  *) echo "BENCH_PROFILE must be release or dev, got '$profile'" >&2; exit 2 ;;
esac

cargo build "${build_flags[@]}" -p voltgate -p voltgate-bench --bin voltgate --bin hostile-input
exec "${CARGO_TARGET_DIR:-target}/$dir/hostile-input" "$@"
