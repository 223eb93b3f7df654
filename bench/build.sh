# Sourced by the bench/run*.sh scripts: builds voltgate and one benchmark in the
# profile BENCH_PROFILE names (release by default; dev for a quick check of a
# harness only, whose figures say nothing about production performance), then
# runs the benchmark with the script's arguments.
#   run_benchmark <benchmark binary> [arguments...]
run_benchmark() {
  local bench="$1"
  shift
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  local build_flags=() dir
  case "${BENCH_PROFILE:-release}" in
    release) build_flags=(--release); dir=release ;;
    dev | debug) dir=debug ;;
    *) echo "BENCH_PROFILE must be release or dev, got '${BENCH_PROFILE}'" >&2; exit 2 ;;
  esac
  cargo build "${build_flags[@]}" -p voltgate -p voltgate-bench --bin voltgate --bin "$bench"
  # Benchmarks may hold ~1,000 sockets on each side: make sure they may.
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  exec "${CARGO_TARGET_DIR:-target}/$dir/$bench" "$@"
}
