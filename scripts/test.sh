#!/usr/bin/env bash
# The single test command. Installs missing Python packages, builds the release binary, fetches the
# test models (SmolLM2-135M and Qwen2.5-Coder-0.5B) and the benchmark data into $RELAY_HOME (default
# ~/.cache/relay), regenerates the tiny random GGUF models into $RELAY_HOME/test (checking they are
# the ones Tests/Fixtures was made from), then runs `swift test -c release` and drives `relay serve`
# with the openai client (scripts/test_server.py). Extra arguments go to `swift test` (e.g.
# `scripts/test.sh --filter GGUFTests`) and skip the server script.
# RELAY_SCRATCH_PATH, if set, is passed to swift as --scratch-path (default: .build).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v swift >/dev/null && [ -x /opt/swift/usr/bin/swift ]; then
  export PATH="/opt/swift/usr/bin:$PATH"
fi

pip_need() { python3 -c "import $1" 2>/dev/null || python3 -m pip install -q --disable-pip-version-check "$2"; }
pip_need numpy numpy
pip_need gguf gguf==0.19.0
pip_need openai openai
pip_need schemathesis schemathesis==4.32.5

scratch=()
if [ -n "${RELAY_SCRATCH_PATH:-}" ]; then scratch=(--scratch-path "$RELAY_SCRATCH_PATH"); fi

# One build for the binary and the tests (a plain `swift build` and `swift test` use different
# settings, and SwiftNIO and Hummingbird would be compiled twice).
swift build -c release --build-tests "${scratch[@]}"
relay="$(swift build -c release "${scratch[@]}" --show-bin-path)/relay"
"$relay" models fetch smollm2-135m qwen2.5-coder-0.5b
"$relay" data fetch

home="${RELAY_HOME:-$HOME/.cache/relay}"
python3 scripts/make_tiny_gguf.py "$home/test" --check Tests/Fixtures

# Model tests share one process-wide thread pool and model scratch buffers: run them one at a time.
swift test -c release --skip-build --no-parallel "${scratch[@]}" "$@"

# The server through the official openai client (skipped when arguments select some Swift tests).
if [ $# -eq 0 ]; then python3 scripts/test_server.py "$relay"; fi
