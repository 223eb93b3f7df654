#!/usr/bin/env bash
# Builds voltgate and measures the ticket rush on PostgreSQL (see
# docs/performance.md): the raw single-row conditional UPDATE with 1 and 32
# clients, then 200 buyers checking out one quota of 100,000 (checkouts/s,
# p50/p99), then the same buyers selling out a quota of 2,000 (exactly 2,000
# orders, the rest refused SOLD_OUT). Needs PostgreSQL on its default local
# port; extra arguments go to `rush`, e.g. `--seconds 30` or
# `--postgres-admin-url postgres://…/postgres`.
# BENCH_PROFILE=dev uses debug builds, for checking the harness only.
set -euo pipefail
source "$(dirname "$0")/build.sh"
run_benchmark rush "$@"
