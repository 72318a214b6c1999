#!/usr/bin/env bash
# The soak test (scripts/soak.py): 64 clients against `relay serve` on loopback for MINUTES
# (default 10), stopping by itself. Run after scripts/test.sh has built relay and fetched SmolLM2.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v swift >/dev/null && [ -x /opt/swift/usr/bin/swift ]; then
  export PATH="/opt/swift/usr/bin:$PATH"
fi
relay="$(swift build -c release --show-bin-path)/relay"
exec python3 scripts/soak.py "$relay" --minutes "${1:-10}" "${@:2}"
