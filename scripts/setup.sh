#!/usr/bin/env bash
# Sets Relay up on a fresh machine of the reference kind (Debian 12, Swift in /opt/swift, python3
# with pip): installs the Python packages the scripts need, builds the release binary, fetches the
# models (SmolLM2-135M and the Qwen2.5-Coder 1.5B + 0.5B pair, 1.7 GB, into $RELAY_HOME, default
# ~/.cache/relay), checks SmolLM2 with a short generation, then runs the relay: the pair answers a
# sample problem with RelayGen over speculative decoding, coloured by the model that wrote each piece.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v swift >/dev/null && [ -x /opt/swift/usr/bin/swift ]; then
  export PATH="/opt/swift/usr/bin:$PATH"
fi
command -v swift >/dev/null || { echo "error: swift not found (expected in /opt/swift/usr/bin)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "error: python3 not found" >&2; exit 1; }

# Python packages for scripts/make_tiny_gguf.py and scripts/make_fixtures.py, only if missing.
pip_need() { python3 -c "import $1" 2>/dev/null || python3 -m pip install -q --disable-pip-version-check "$2"; }
pip_need numpy numpy
pip_need gguf gguf==0.19.0

swift build -c release
.build/release/relay models fetch smollm2-135m
.build/release/relay generate -m smollm2-135m -p "Name three primary colors." -n 48 --temp 0
.build/release/relay models fetch qwen2.5-coder-1.5b
.build/release/relay models fetch qwen2.5-coder-0.5b
echo "--- relaygen-sd: large model in the default colour, small model in green; telemetry on stderr ---" >&2
.build/release/relay generate -m qwen2.5-coder-1.5b -md qwen2.5-coder-0.5b --mode relaygen-sd --color --temp 0 -n 512 \
  -p "A bakery sells muffins at \$3 each and cookies at \$1.50 each. On Monday it sold 48 muffins and twice as many cookies. How much money did it take in on Monday? Please reason step by step, and put your final answer within \\boxed{}."
