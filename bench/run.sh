#!/usr/bin/env bash
# Builds voltgate and the benchmark, then measures MQTT → GraphQL subscription
# latency with the defaults (see docs/performance.md). Extra arguments go to
# `bay-latency`, e.g. `bench/run.sh --seconds 5 --skip-search`.
# BENCH_PROFILE=dev uses debug builds, for checking the harness only.
set -euo pipefail
source "$(dirname "$0")/build.sh"
run_benchmark bay-latency "$@"
