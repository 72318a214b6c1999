#!/usr/bin/env bash
# Load benchmark of relay serve next to llama.cpp's llama-server (same GGUF, same run, loopback):
# throughput and p50/p99 latency at 1, 4 and 16 concurrent clients. Bounded: max(4, clients)
# requests per level. Arguments go to scripts/bench_server.py (e.g. --model smollm2-135m --np 4).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v swift >/dev/null && [ -x /opt/swift/usr/bin/swift ]; then
  export PATH="/opt/swift/usr/bin:$PATH"
fi
python3 -c "import openai" 2>/dev/null || python3 -m pip install -q --disable-pip-version-check openai
swift build -c release --build-tests   # the same build as scripts/test.sh
relay="$(swift build -c release --show-bin-path)/relay"
# llama.cpp is built (once, minutes) only when it takes part.
llama=-
case " $* " in *" --no-llama "*) ;; *) llama="$(bash ../shared/tools/llama-cpp)/llama-server" ;; esac
python3 scripts/bench_server.py "$relay" "$llama" "$@"
