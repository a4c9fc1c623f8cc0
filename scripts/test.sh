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

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
# Benches are built by clippy above and run by `cargo bench`; their fixtures take minutes to set up.
cargo nextest run --lib --bins --tests --locked --no-fail-fast
