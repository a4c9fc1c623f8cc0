#!/usr/bin/env bash
# The embedded store under sustained load (BENCHMARKS.md, "Embedded store"): a release server
# on a fresh data directory pinned to core 0, `cartograph loadgen` over gRPC (fresh trace ids
# per request) pinned to core 1, for SECONDS at RATE spans/s (0: as fast as answers come).
# Reports what was stored (not what was answered), refusals, peak RSS, bytes per stored span
# with everything in the data directory counted, then read latencies on the grown store:
# trace by id, search by service over the last hour, search by correlation id over 24 h.
#
#   bash scripts/bench-store.sh [seconds, default 600] [rate, default 0]
#
# Needs `cargo build --release`. Ports 24317/24318/28080; data in a temporary directory
# (KEEP=dir to keep it there).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-600}"
rate="${2:-0}"
target="${CARGO_TARGET_DIR:-$HOME/.cache/cartograph/target}"
bin="$target/release/cartograph"
work="${KEEP:-$(mktemp -d)}"
mkdir -p "$work"
ui=127.0.0.1:28080
trap 'kill $(jobs -p) 2>/dev/null || true; [[ -n "${KEEP:-}" ]] || rm -rf "$work"' EXIT

metric() { curl -s "http://$ui/metrics" | awk -v name="$1" '$1 == name {print $2}'; }
peak_rss_mib() { awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$1/status"; }
# p50 and p99 of the numbers on stdin (seconds), printed in milliseconds.
percentiles() { sort -g | awk '{v[NR]=$1} END {printf "p50 %.1f ms, p99 %.1f ms (%d requests)", v[int(NR*0.5)+1]*1000, v[int(NR*0.99)+1]*1000, NR}'; }

rm -rf "$work/data"
taskset -c 0 "$bin" serve --data-dir "$work/data" --otlp-grpc 127.0.0.1:24317 \
    --otlp-http 127.0.0.1:24318 --ui "$ui" > "$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do curl -sf "http://$ui/health/ready" > /dev/null && break; sleep 0.1; done

echo "== loadgen gRPC, ${secs}s at rate ${rate} (0 = as fast as answers come)"
taskset -c 1 "$bin" loadgen --endpoint http://127.0.0.1:24317 --rate "$rate" \
    --duration "$secs" --concurrency 4 | sed 's/^/   /'
# Let the writer finish what was acknowledged.
for _ in $(seq 1 100); do
    [[ "$(metric cartograph_pipeline_queue_items)" == "0" ]] && break
    sleep 0.2
done
stored="$(metric 'cartograph_stored_items_total{signal="traces"}')"
bytes="$(du -sb "$work/data" | cut -f1)"
echo "   stored ${stored} spans, $(awk -v s="$stored" -v t="$secs" 'BEGIN {printf "%.0f", s/t}') spans/s stored"
echo "   data directory ${bytes} bytes: $(awk -v b="$bytes" -v s="$stored" 'BEGIN {printf "%.1f", b/s}') bytes per stored span"
du -sh "$work/data"/* | sed 's/^/     /'
echo "   peak RSS $(peak_rss_mib $pid) MiB"

echo "== reads on the grown store (server still on core 0, idle)"
ids="$(curl -s "http://$ui/api/v1/traces?limit=200" | python3 -c 'import json,sys; print("\n".join(t["trace_id"] for t in json.load(sys.stdin)["traces"]))')"
for id in $ids; do
    curl -s -o /dev/null -w '%{time_total}\n' "http://$ui/api/v1/traces/$id"
done | percentiles | sed 's/^/   trace by id: /'; echo
for n in $(seq 1 50); do
    curl -s -o /dev/null -w '%{time_total}\n' "http://$ui/api/v1/traces?service=load-service-$(printf %03d $((n % 20)))&limit=20"
done | percentiles | sed 's/^/   search by service, last hour: /'; echo
first="$(echo "$ids" | head -1)"
corr="$(curl -s "http://$ui/api/v1/traces/$first" | python3 -c '
import json, sys
def find(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "x-correlation-id":
                return value.get("stringValue") if isinstance(value, dict) else value
            found = find(value)
            if found: return found
    if isinstance(node, list):
        for item in node:
            found = find(item)
            if found: return found
print(find(json.load(sys.stdin)) or "")')"
from="$(($(date +%s) - 86400))000000000"
for _ in $(seq 1 50); do
    curl -s -o /dev/null -w '%{time_total}\n' "http://$ui/api/v1/traces?attr=x-correlation-id%3D${corr}&from=${from}&limit=20"
done | percentiles | sed "s/^/   search by correlation id ${corr}, 24 h: /"; echo

echo "== SIGTERM"
start=$(date +%s.%N)
kill -TERM $pid
wait $pid || true
echo "   exited in $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.2f", e-s}') s"
