#!/usr/bin/env bash
# Builds voltgate and measures sign-in throughput with the production argon2id
# parameters (see docs/performance.md). An optional argument sets the seconds
# per step (default 10). BENCH_PROFILE=dev uses debug builds, for checking the
# harness only.
set -euo pipefail
source "$(dirname "$0")/build.sh"
run_benchmark login-throughput "$@"
