#!/usr/bin/env bash
# The remote large-model backend (--large-url) against llama.cpp's llama-server on loopback, built
# from the llama-cpp-python 0.3.36 sources by ../shared/tools/llama-cpp (about 13 minutes the first
# time on 2 cores, so not part of scripts/test.sh). Extra arguments pick tests by name.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v swift >/dev/null && [ -x /opt/swift/usr/bin/swift ]; then
  export PATH="/opt/swift/usr/bin:$PATH"
fi
python3 -c "import openai" 2>/dev/null || python3 -m pip install -q --disable-pip-version-check openai
swift build -c release --build-tests   # the same build as scripts/test.sh
relay="$(swift build -c release --show-bin-path)/relay"
"$relay" models fetch smollm2-135m
llama="$(bash ../shared/tools/llama-cpp)/llama-server"
python3 scripts/test_remote.py "$relay" "$llama" "$@"
