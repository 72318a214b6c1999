#!/usr/bin/env bash
# Sets Relay up on a fresh machine of the reference kind (Debian 12, Swift in /opt/swift, python3
# with pip): installs the Python packages the scripts need, builds the release binary, fetches the
# default model (SmolLM2-135M, about 100 MB, into $RELAY_HOME, default ~/.cache/relay) and runs a
# short generation as a smoke test.
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
.build/release/relay generate -m smollm2-135m -p "What is the capital of France?" -n 48 --temp 0
