#!/usr/bin/env bash
# Builds voltgate and runs the realtime engine's benchmarks in one go: MQTT →
# subscriber latency and the highest sustained rate on the defaults and on
# PostgreSQL + Redis + Mosquitto, fan-out to 10,000 WebSocket subscribers
# against the stock async-graphql handler, and resuming after a replica is
# killed (see docs/performance.md). Needs PostgreSQL and Redis on their default
# local ports and the mosquitto binary. Extra arguments go to `realtime`, e.g.
# `bench/run-realtime.sh --only fanout` or `--quick`.
# BENCH_PROFILE=dev uses debug builds, for checking the harness only.
set -euo pipefail
source "$(dirname "$0")/build.sh"
run_benchmark realtime "$@"
