#!/usr/bin/env bash
# Builds voltgate and runs the supervision benchmark: telemetry ingestion
# against the broker's raw rate, and alert latency from the triggering MQTT
# message to a technician's subscription, on PostgreSQL + Redis + Mosquitto
# and on the defaults, in one run (see docs/performance.md). Needs PostgreSQL
# and Redis on their default local ports and the mosquitto binary. Extra
# arguments go to `supervision`, e.g. `--quick` or `--setups defaults`.
# BENCH_PROFILE=dev uses debug builds, for checking the harness only.
set -euo pipefail
source "$(dirname "$0")/build.sh"
run_benchmark supervision "$@"
