#!/usr/bin/env bash
# Speed of relay against llama.cpp's llama-bench on the same GGUF files, same thread count, same run:
# prefill of 512 tokens and decode of 128, the ratio relay / llama.cpp, and peak memory of each.
# Builds the reference llama.cpp once per machine (../shared/tools/llama-cpp, about 13 minutes).
#   bash scripts/bench.sh [MODEL ...]      (default: the three registry models; THREADS=2, REPS=3)
source "$(dirname "$0")/bench-common.sh"
reps=${REPS:-3}
llama=$llama_bin/llama-bench
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; } >&2

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $threads threads, $(date -u +%Y-%m-%d)"
printf '%-34s %12s %12s %7s %12s %12s %7s %10s %10s\n' model "pp512 relay" "pp512 llama" ratio "tg128 relay" "tg128 llama" ratio "MB relay" "MB llama"
for m in "${models[@]}"; do
  "$relay" models fetch "$m" >&2
  path=$("$relay" models list | awk -v n="$m" '$1 == n { print $NF }')
  r=$(/usr/bin/time -f '%M' -o /tmp/relay-bench-mem "$relay" bench -m "$path" -t "$threads" -r "$reps" --json)
  l=$(/usr/bin/time -f '%M' -o /tmp/llama-bench-mem "$llama" -m "$path" -t "$threads" -p 512 -n 128 -r "$reps" -o json 2>/dev/null)
  python3 - "$m" "$r" "$l" "$(cat /tmp/relay-bench-mem)" "$(cat /tmp/llama-bench-mem)" <<'PY'
import json, sys
name, r, l, lmem = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[5])
rmem = r["peak_rss_mb"] * 1024  # the process's peak includes relay bench's bandwidth buffer: read before it
pp = next(x["avg_ts"] for x in l if x["n_prompt"] > 0 and x["n_gen"] == 0)
tg = next(x["avg_ts"] for x in l if x["n_gen"] > 0 and x["n_prompt"] == 0)
rp, rt = r["prefill_tokens_per_second"], r["decode_tokens_per_second"]
print(f"{name:34s} {rp:12.1f} {pp:12.1f} {rp/pp:6.2f}x {rt:12.1f} {tg:12.1f} {rt/tg:6.2f}x {rmem/1024:10.0f} {lmem/1024:10.0f}")
v = r["verify_ms"]
bw, per = r["read_bandwidth_gb_per_s"], r["bytes_per_token"]
print(f"    memory: {bw:.1f} GB/s read; decode reads {per / 1e6:.0f} MB per token: relay {r['bandwidth_fraction']:.0%} of it, llama.cpp {tg * per / bw / 1e9:.0%}")
print("    one forward after 256 tokens, ms for 1/2/4/8/16 new positions: " + " / ".join(f"{v[k]:.1f}" for k in ["1","2","4","8","16"]))
PY
done
