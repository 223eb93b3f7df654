#!/usr/bin/env bash
# Builds voltgate and measures check-in throughput: 50 concurrent scanners
# admitting 10,000 tickets, on the defaults (SQLite) and then on PostgreSQL
# (see docs/performance.md). The PostgreSQL URL is CHECKIN_BENCH_DATABASE_URL,
# by default the local server's postgres database (the run adds its own
# organizer; nothing is dropped). Extra arguments go to `checkin-throughput`,
# e.g. `--scanners 16`, or `--rate 1000` for the latency at 1,000 scans a
# second offered instead of the throughput. BENCH_PROFILE=dev uses debug
# builds, for checking the harness only.
set -euo pipefail
source "$(dirname "$0")/build.sh"
postgres="${CHECKIN_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
(run_benchmark checkin-throughput "$@")
(run_benchmark checkin-throughput --database-url "$postgres" "$@")
