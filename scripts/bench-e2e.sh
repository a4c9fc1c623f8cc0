#!/usr/bin/env bash
# End-to-end ingest benchmarks of BENCHMARKS.md: Cartograph (SQLite + map, then map only) and the
# rotel collector with a blackhole exporter, each driven by the same `cartograph loadgen` load
# and by h2load replaying one pre-encoded OTLP/HTTP request. Server and load share the machine.
#
#   bash scripts/bench-e2e.sh [seconds per run, default 30]
#
# Needs: `cargo build --release`; rotel (pip install rotel) and h2load (apt nghttp2-client) for
# the peer runs, which are skipped when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-30}"
target="${CARGO_TARGET_DIR:-$HOME/.cache/cartograph/target}"
bin="$target/release/cartograph"
rotel="${ROTEL:-$(python3 -c 'import rotel, os; print(os.path.join(os.path.dirname(rotel.__file__), "rotel-agent"))' 2>/dev/null || true)}"
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
load=(--concurrency 4 --services 20 --spans-per-trace 8 --spans-per-request 512 --rate 0 --duration "$secs")
"$bin" loadgen --write-request "$work/request.bin"

peak_rss() { awk '/VmHWM/ {printf "%.0f MiB", $2/1024}' "/proc/$1/status"; }

run_cartograph() {
    local name="$1"; shift
    rm -rf "$work/data"
    "$bin" --data-dir "$work/data" "$@" > "$work/server.log" 2>&1 &
    local pid=$!
    sleep 2
    echo "== $name: loadgen gRPC"
    "$bin" loadgen "${load[@]}"
    echo "   peak RSS $(peak_rss $pid)"
    sleep 5
    curl -s localhost:8080/metrics | grep -E '^cartograph_(accepted|stored)_items_total\{signal="traces"|^cartograph_graph_skipped' | sed 's/^/   /'
    if command -v h2load > /dev/null; then
        echo "== $name: h2load OTLP/HTTP, the same request replayed"
        h2load --h1 -D "$secs" -c 4 -d "$work/request.bin" -H 'content-type: application/x-protobuf' \
            http://127.0.0.1:4318/v1/traces | grep -E '^(finished|requests|status codes)' | sed 's/^/   /'
    fi
    kill -INT $pid; wait $pid || true
}

run_cartograph "cartograph, SQLite + map"
printf '[storage]\nstore_spans = false\n' > "$work/no-spans.toml"
run_cartograph "cartograph, map + rollups only (store_spans = false)" --config "$work/no-spans.toml"

if [[ -x "$rotel" ]]; then
    "$rotel" start --exporter blackhole --otlp-grpc-endpoint 127.0.0.1:4317 \
        --otlp-http-endpoint 127.0.0.1:4318 > "$work/rotel.log" 2>&1 &
    pid=$!
    sleep 2
    echo "== rotel $("$rotel" --version | cut -d' ' -f2), blackhole exporter: loadgen gRPC"
    "$bin" loadgen "${load[@]}"
    echo "   peak RSS $(peak_rss $pid)"
    if command -v h2load > /dev/null; then
        echo "== rotel: h2load OTLP/HTTP, the same request replayed"
        h2load --h1 -D "$secs" -c 4 -d "$work/request.bin" -H 'content-type: application/x-protobuf' \
            http://127.0.0.1:4318/v1/traces | grep -E '^(finished|requests|status codes)' | sed 's/^/   /'
    fi
    kill $pid; wait $pid || true
else
    echo "== rotel not found (pip install rotel): peer runs skipped"
fi
