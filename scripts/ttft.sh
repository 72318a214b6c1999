#!/usr/bin/env bash
# Time to first token of a fresh process, as a user pays it on every invocation: `relay generate
# -n 1 --raw` against llama.cpp's llama-simple -n 1 on the same GGUF and prompt, interleaved
# ROUNDS times (default 5), medians of wall time (load, prefill and one token).
#   bash scripts/ttft.sh [MODEL]      (default qwen2.5-coder-1.5b; THREADS=2)
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-qwen2.5-coder-1.5b}
threads=${THREADS:-2}
rounds=${ROUNDS:-5}
swift build -c release --product relay >&2
relay=.build/release/relay
llama=$(bash ../shared/tools/llama-cpp)/llama-simple
path=$("$relay" models list | awk -v n="$model" '$1 == n { print $NF }')
prompt="The capital of France is"
python3 - "$relay" "$llama" "$path" "$threads" "$rounds" "$prompt" <<'PY'
import statistics, subprocess, sys, time
relay, llama, path, threads, rounds, prompt = sys.argv[1:]
cmds = {"relay": [relay, "generate", "-m", path, "-t", threads, "-n", "1", "--raw", "-p", prompt],
        "llama.cpp": [llama, "-m", path, "-n", "1", prompt]}
times = {k: [] for k in cmds}
for _ in range(int(rounds)):
    for name, cmd in cmds.items():
        t0 = time.time()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times[name].append(time.time() - t0)
r, l = statistics.median(times["relay"]), statistics.median(times["llama.cpp"])
rng = {k: f"{min(v):.2f}–{max(v):.2f}" for k, v in times.items()}
print(f"{path.split('/')[-1]}: time to first token of a fresh process, median (range) of {rounds} interleaved runs: "
      f"relay {r:.2f} s ({rng['relay']}), llama.cpp (llama-simple) {l:.2f} s ({rng['llama.cpp']}), ratio {r / l:.2f}x")
PY
