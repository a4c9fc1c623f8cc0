#!/usr/bin/env bash
# Page render times with a large store (BENCHMARKS.md, issue 17): loadgen stores ~1M spans over
# 300 services (fresh trace ids) into an embedded store, then every dashboard page is fetched
# 10 times with curl (with the parts the map and insights pages load after themselves), one after the other; the report gives p50 and max per page, and the map's
# size. Target: every page under 50 ms.
#
#   bash scripts/bench-pages.sh [spans per second, default 25000] [seconds, default 40]
set -euo pipefail
cd "$(dirname "$0")/.."
rate="${1:-25000}"
seconds="${2:-40}"
bin="${CARGO_TARGET_DIR:-$HOME/.cache/cartograph/target}/release/cartograph"
cargo build --release --quiet
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
ui=127.0.0.1:18480
"$bin" serve --data-dir "$work/data" --otlp-grpc 127.0.0.1:18417 --otlp-http 127.0.0.1:18418 \
    --ui "$ui" > "$work/server.log" 2>&1 &
sleep 2
"$bin" loadgen --endpoint http://127.0.0.1:18417 --services 300 --spans-per-trace 8 \
    --rate "$rate" --duration "$seconds" | head -3
sleep 5
base="http://$ui"
curl -s "$base/api/v1/graph?window=15m" | python3 -c 'import json,sys; g=json.load(sys.stdin); print("map:", len(g["nodes"]), "nodes,", len(g["edges"]), "edges")'
read -r service target trace < <(curl -s "$base/api/v1/graph?window=15m" | python3 -c '
import json, sys, urllib.parse, urllib.request
g = json.load(sys.stdin)
edge = max((e for e in g["edges"] if e["source"].startswith("service:") and e["target"].startswith("service:")), key=lambda e: e["requests"])
q = lambda s: urllib.parse.quote(s, safe="")
traces = json.load(urllib.request.urlopen(sys.argv[1] + "/api/v1/traces?limit=1&service=" + q(edge["source"][8:])))
print(q(edge["source"][8:]), q(edge["source"]) + "/" + q(edge["target"]), traces["traces"][0]["trace_id"])
' "$base")
curl -s "$base/metrics" | grep -E '^cartograph_(store_spans_stored_total|spans_stored_total)' | head -2 || true
for page in "/" "/?window=15m" "/?window=15m&expand=all" "/map/findings?window=15m" "/services" "/services/$service" \
    "/edges/$target" "/kafka" "/breakers" "/insights" "/insights/anomalies" "/traces?service=$service" "/traces/$trace"; do
    for _ in $(seq 10); do curl -s -o /dev/null -w '%{time_total}\n' "$base$page"; done | sort -n |
        awk -v page="$page" '{t[NR]=$1} END {printf "%-60s p50 %6.1f ms  max %6.1f ms\n", page, t[int(NR*0.5)]*1000, t[NR]*1000}'
done
