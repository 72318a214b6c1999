# The start every benchmark against llama.cpp shares (sourced, with the script's arguments):
# strict mode, the repository root, THREADS (default 2), the models (the arguments, else the three
# registry models), a release `relay` and the reference llama.cpp's folder (built once per
# machine by ../shared/tools/llama-cpp, about 13 minutes).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
threads=${THREADS:-2}
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(smollm2-135m qwen2.5-coder-0.5b qwen2.5-coder-1.5b)
swift build -c release --product relay >&2
relay=.build/release/relay
llama_bin=$(bash ../shared/tools/llama-cpp)
