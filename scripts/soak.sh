#!/usr/bin/env bash
# Soak: `cartograph loadgen` at RATE spans/s for SECONDS against a release server on SQLite;
# samples the server's RSS and queue depth every 30 s and ends with the reconciliation
# (sent = accepted + refused with a retryable status; accepted = stored).
#
#   scripts/soak.sh [RATE] [SECONDS]     (defaults: 4000 spans/s — half of the ~8,000/s the
#                                         SQLite writer sustains once its database passes a
#                                         few GB — for 1800 s)
set -euo pipefail
cd "$(dirname "$0")/.."
rate="${1:-4000}"
seconds="${2:-1800}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cartograph/target}"
cargo build --release --locked --quiet
bin="$CARGO_TARGET_DIR/release/cartograph"
work="$(mktemp -d)"
"$bin" serve --data-dir "$work/data" --otlp-grpc 127.0.0.1:24317 --otlp-http 127.0.0.1:24318 \
    --ui 127.0.0.1:28080 > "$work/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2> /dev/null || true' EXIT
until curl -sf http://127.0.0.1:28080/health/live > /dev/null; do sleep 0.2; done
(
    echo "elapsed_s,rss_mib,queued_items"
    start=$(date +%s)
    while kill -0 "$server" 2> /dev/null; do
        rss_kib=$(awk '/VmRSS/ {print $2}' "/proc/$server/status")
        queued=$(curl -s http://127.0.0.1:28080/metrics \
            | awk '$1 == "cartograph_pipeline_queue_items" {print $2}')
        echo "$(( $(date +%s) - start )),$(( rss_kib / 1024 )),${queued:-?}"
        sleep 30
    done
) > "$work/rss.csv" &
"$bin" loadgen --endpoint http://127.0.0.1:24317 --rate "$rate" --duration "$seconds" \
    | tee "$work/loadgen.txt"
sleep 5
metric() { curl -s http://127.0.0.1:28080/metrics | awk -v s="$1" 'index($0, s) == 1 {print $2}'; }
echo "accepted spans: $(metric 'cartograph_accepted_items_total{signal="traces"}')"
echo "stored spans:   $(metric 'cartograph_stored_items_total{signal="traces"}')"
echo "store write errors: $(metric 'cartograph_store_write_errors_total')"
echo "RSS (MiB) and queue depth over time:"
cat "$work/rss.csv"
echo "work dir: $work"
