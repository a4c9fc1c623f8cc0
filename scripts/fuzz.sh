#!/usr/bin/env bash
# Builds every fuzz target and runs each for SECONDS (default 10) from the committed seeds,
# new inputs going to a scratch corpus (the repository's corpus is not changed). Installs
# cargo-fuzz if missing. Exits non-zero on a crash (the input is saved under fuzz/artifacts/).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-10}"
shift || true
cache="${XDG_CACHE_HOME:-$HOME/.cache}/cartograph"
export CARGO_TARGET_DIR="$cache/fuzz-target"
# cargo-fuzz passes -Z flags (sanitizer, coverage); this stable toolchain accepts them so.
export RUSTC_BOOTSTRAP=1

if ! command -v cargo-fuzz > /dev/null; then
    echo "installing cargo-fuzz"
    cargo install --locked --quiet cargo-fuzz
fi

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    targets=(otlp_traces otlp_metrics config trace_query)
fi
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for target in "${targets[@]}"; do
    mkdir -p "$scratch/$target"
    echo "fuzzing $target for ${seconds}s"
    log="$scratch/$target.log"
    if ! cargo fuzz run -O "$target" "$scratch/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 > "$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz target $target failed: the input is under fuzz/artifacts/$target/"
        exit 1
    fi
    grep -E "^#[0-9]+\s+DONE|^stat::(number_of_executed_units|peak_rss_mb)" "$log" || true
done
