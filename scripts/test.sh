#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what the tests need, idempotently, then runs
# formatting and lint checks and every test.
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${XDG_CACHE_HOME:-$HOME/.cache}/cartograph"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"

# Python OpenTelemetry SDK for the exporter tests, in a venv keyed by the requirements file.
venv="$cache/venv"
stamp="$venv/.requirements.sha256"
wanted="$(sha256sum tests/python/requirements.txt | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]]; then
    echo "installing the Python test dependencies into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/python/requirements.txt
    echo "$wanted" > "$stamp"
fi
export CARTOGRAPH_TEST_PYTHON="$venv/bin/python"

# Debian's Chromium and playwright-core (no downloaded browsers) for the dashboard tests.
if ! command -v chromium > /dev/null; then
    echo "installing chromium from Debian"
    apt-get install -y -q chromium > /dev/null 2>&1 || { apt-get update -q > /dev/null && apt-get install -y -q chromium > /dev/null; }
fi
# Debian's Alertmanager, for the compatibility test of Cartograph's /api/v2/alerts push.
if ! command -v prometheus-alertmanager > /dev/null; then
    echo "installing prometheus-alertmanager from Debian"
    apt-get install -y -q prometheus-alertmanager > /dev/null 2>&1 || { apt-get update -q > /dev/null && apt-get install -y -q prometheus-alertmanager > /dev/null; }
fi
node_dir="$cache/node"
if [[ ! -d "$node_dir/node_modules/playwright-core" ]]; then
    echo "installing playwright-core into $node_dir"
    mkdir -p "$node_dir"
    npm install --prefix "$node_dir" --no-audit --no-fund --silent playwright-core@1.64.1
fi
export CARTOGRAPH_TEST_NODE_MODULES="$node_dir/node_modules"

# The real ClickHouse engine (chDB) behind ClickHouse's HTTP interface, for the ClickHouse
# store's tests, unless CARTOGRAPH_TEST_CLICKHOUSE_URL names a real server.
if [[ -z "${CARTOGRAPH_TEST_CLICKHOUSE_URL:-}" ]]; then
    bridge_dir="$(mktemp -d)"
    "$venv/bin/python" tests/support/chdb_bridge.py --path "$bridge_dir/data" \
        --port-file "$bridge_dir/port" > "$bridge_dir/log" 2>&1 &
    bridge_pid=$!
    trap 'kill "$bridge_pid" 2> /dev/null || true; rm -rf "$bridge_dir"' EXIT
    for _ in $(seq 1 300); do
        [[ -s "$bridge_dir/port" ]] && break
        kill -0 "$bridge_pid" 2> /dev/null || { cat "$bridge_dir/log"; exit 1; }
        sleep 0.1
    done
    [[ -s "$bridge_dir/port" ]] || { echo "the chDB bridge did not start"; cat "$bridge_dir/log"; exit 1; }
    export CARTOGRAPH_TEST_CHDB_URL="http://127.0.0.1:$(cat "$bridge_dir/port")"
fi

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
# Benches are built by clippy above and run by `cargo bench`; their fixtures take minutes to set up.
cargo nextest run --lib --bins --tests --locked --no-fail-fast
# Every fuzz target, briefly (longer runs: scripts/fuzz.sh SECONDS; see fuzz/README.md).
bash scripts/fuzz.sh 10
