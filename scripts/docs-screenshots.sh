#!/usr/bin/env bash
# The README's screenshots (docs/screenshots/): a demo runs until its payments breaker is open
# and Kafka lag has grown, then headless Chromium shoots the map (1280 and 1920 px), a service,
# the edge behind the breaker, the Kafka page and a failed trace.
#
#   bash scripts/docs-screenshots.sh [UI address of a running demo, default: start one]
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/screenshots
mkdir -p "$out"
if [ $# -ge 1 ]; then
    base="http://$1"
else
    bin="${CARGO_TARGET_DIR:-$HOME/.cache/cartograph/target}/release/cartograph"
    cargo build --release --quiet
    work="$(mktemp -d)"
    trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
    "$bin" serve --demo --data-dir "$work/data" --otlp-grpc 127.0.0.1:19417 \
        --otlp-http 127.0.0.1:19418 --ui 127.0.0.1:19480 > "$work/server.log" 2>&1 &
    base="http://127.0.0.1:19480"
    sleep 240
fi
# Wait for the breaker to be open while lag is well up (it drains within seconds at its tail) (the demo's cycles drift apart: give
# up on the lag after three minutes).
for _ in $(seq 180); do
    state="$(curl -s "$base/api/v1/breakers?window=5m" | python3 -c 'import json,sys; print(" ".join(b["state"] for b in json.load(sys.stdin)["breakers"]))' || true)"
    lag="$(curl -s "$base/api/v1/kafka?window=5m" | python3 -c 'import json,sys; print(max([g.get("lag",0) for g in json.load(sys.stdin).get("groups",[])] or [0]))' || true)"
    case " $state " in *" open "*) [ "${lag%.*}" -gt 150 ] 2>/dev/null && break ;; esac
    sleep 1
done
# Whatever the lag, the pages are shot while the breaker is open.
for _ in $(seq 120); do
    state="$(curl -s "$base/api/v1/breakers?window=5m" | python3 -c 'import json,sys; print(" ".join(b["state"] for b in json.load(sys.stdin)["breakers"]))' || true)"
    case " $state " in *" open "*) break ;; esac
    sleep 1
done
echo "breakers: $state; largest lag: $lag"
shoot() {
    chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
        --hide-scrollbars --window-size="$2" --virtual-time-budget=4000 \
        --screenshot="$out/$1.png" "$base$3" 2>/dev/null
}
# The maps first, while the lag is up (it drains within half a minute).
shoot map-1280 1280,800 "/" &
shoot map-1920 1920,1080 "/"
wait
trace="$(curl -s "$base/api/v1/traces?service=orders&error=true&limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["traces"][0]["trace_id"])')"
shoot service-orders 1280,1000 "/services/orders"
shoot edge-orders-payments 1280,1000 "/edges/service%3Aorders/service%3Apayments"
shoot kafka 1280,900 "/kafka"
shoot trace 1280,900 "/traces/$trace"
shoot audit 1280,1000 "/insights"
ls -la "$out"
