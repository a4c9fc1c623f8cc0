#!/usr/bin/env bash
# Latency of /api/v1/graph on a large map (BENCHMARKS.md): a loadgen burst over 500 services
# leaves ~2,000+ edges in the live window; then 200 sequential requests are timed with curl.
#
#   bash scripts/bench-graph-api.sh [services, default 500] [spans, default 6000]
set -euo pipefail
cd "$(dirname "$0")/.."
services="${1:-500}"
spans="${2:-6000}"
bin="${CARGO_TARGET_DIR:-$HOME/.cache/cartograph/target}/release/cartograph"
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
printf '[graph]\npairing_ttl_secs = 1\n' > "$work/config.toml"
"$bin" --store memory --config "$work/config.toml" > "$work/server.log" 2>&1 &
sleep 2
"$bin" loadgen --services "$services" --spans-per-trace 8 --spans-per-request 500 \
    --rate "$spans" --duration 1 --concurrency 1 | head -2
sleep 4
url="http://127.0.0.1:8080/api/v1/graph?window=15m"
curl -s "$url" | python3 -c 'import json,sys; g=json.load(sys.stdin); print("map:", len(g["nodes"]), "nodes,", len(g["edges"]), "edges")'
for _ in $(seq 200); do curl -s -o /dev/null -w '%{time_total}\n' "$url"; done | sort -n |
    awk '{t[NR]=$1} END {printf "GET /api/v1/graph: p50 %.1f ms, p99 %.1f ms, max %.1f ms (%d requests)\n", t[int(NR*0.5)]*1000, t[int(NR*0.99)]*1000, t[NR]*1000, NR}'
