#!/usr/bin/env bash
# Crash bench: the kill -9 scenario of tests/api/durability.rs, RUNS times in a row against a
# release build. Each run starts `cartograph serve` on a fresh data directory, saturates
# ingest with `cartograph loadgen --rate 0` (its queue full, refusals happening) while four
# probers send 3-span traces of known ids over OTLP/gRPC, kills the server with SIGKILL with
# probes in flight, restarts it on the same directory, waits for /health/ready (the log
# replayed) and reads every acknowledged trace back through /api/v1/traces/{id}.
#
# Prints one line per run (acknowledged, lost, unanswered probes, items replayed, time to
# ready, time to read back) and the total lost; exits non-zero unless nothing acknowledged
# was lost and every probe was answered.
#
#   scripts/bench-crash.sh [RUNS]     (default 20; about 10 s a run)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-20}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cartograph/target}"
CARTOGRAPH_CRASH_RUNS="$runs" cargo test --release --locked --quiet --test api \
    durability::kill_9_repeatedly -- --ignored --exact --nocapture
