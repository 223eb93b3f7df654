#!/usr/bin/env bash
# Builds voltgate and replays hostile GraphQL requests against it: fragment
# fan-out, huge batches, a flood (see docs/performance.md). An optional argument
# sets the flood's seconds (default 10). BENCH_PROFILE=dev uses debug builds,
# for checking the harness only.
set -euo pipefail
source "$(dirname "$0")/build.sh"
run_benchmark hostile-input "$@"
