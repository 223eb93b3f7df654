#!/usr/bin/env bash
# Builds voltgate and measures kiosks and reservations in one run:
# terminalAuthenticate p50/p99 with 200 concurrent kiosks (the success path,
# unlock published through the broker; --unreachable: the failure path with
# MQTT off), and reservations per second when 1,000 customers race for the
# slots of 10 bays (exactly one winner per slot), on the defaults (SQLite) and then on PostgreSQL (see
# docs/performance.md). KIOSK_BENCH_DATABASE_URL is a PostgreSQL URL allowed
# to create databases (the run creates its own and drops it). Extra arguments
# go to `kiosk`, e.g. `--kiosks 20 --customers 100`. BENCH_PROFILE=dev uses
# debug builds, for checking the harness only.
set -euo pipefail
source "$(dirname "$0")/build.sh"
postgres="${KIOSK_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
(run_benchmark kiosk "$@")
(run_benchmark kiosk --database-url "$postgres" "$@")
