#!/usr/bin/env bash
# Fuzzes every target of relay-fuzz (Sources/FuzzTargets) with libFuzzer and AddressSanitizer for
# SECONDS each (default 60), one after the other, and prints executions, CPU time and crashes per
# target. Needs the models and test GGUFs that scripts/test.sh fetches and writes.
#
#   scripts/fuzz.sh [SECONDS] [TARGET ...]
#   FUZZ_MIN_EXECS=1000000 scripts/fuzz.sh 300   # long runs: each target until both ≥300 CPU-s and ≥1M executions
#
# With FUZZ_MIN_EXECS set, SECONDS is a floor on CPU time, not wall time, and a target that falls
# short of either floor is run again (same working corpus) for about what is missing; the table sums
# the rounds. On a busy machine a round's CPU time is well under its wall time.
# The build goes to .build-fuzz. Each target's working corpus is $RELAY_HOME/fuzz/TARGET (kept
# between runs), seeded from Tests/Fuzz/corpus/TARGET, the tiny test GGUFs, the shipped cue and head
# files and the models' chat templates. A crash leaves its input in $RELAY_HOME/fuzz/crashes/TARGET;
# copy it into Tests/Fuzz/corpus/TARGET once fixed, so FuzzTests replay it. Exit status 1 if any crashed.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v swift >/dev/null && [ -x /opt/swift/usr/bin/swift ]; then
  export PATH="/opt/swift/usr/bin:$PATH"
fi
seconds="${1:-60}"
shift || true

# libFuzzer's driver without its main: relay-fuzz has its own and calls LLVMFuzzerRunDriver. Swift
# code gets AddressSanitizer and coverage; the C kernels do not (instrumenting their intrinsics took
# over 15 minutes to compile), and the gguf target reaches them only with shapes the loader checked.
toolchain="$(dirname "$(dirname "$(readlink -f "$(command -v swift)")")")"
fuzzer_lib="$(ls "$toolchain"/lib/clang/*/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a | head -1)"
build=(swift build -c release --scratch-path .build-fuzz --product relay-fuzz
       -Xswiftc -sanitize=address -Xswiftc -sanitize-coverage=edge,trace-cmp,inline-8bit-counters,pc-table -Xswiftc -DFUZZING
       -Xlinker "$fuzzer_lib" -Xlinker -lstdc++)
start=$(date +%s)
"${build[@]}" >/dev/null
bin="$("${build[@]}" --show-bin-path)/relay-fuzz"
echo "fuzz build: $(( $(date +%s) - start )) s"

home="${RELAY_HOME:-$HOME/.cache/relay}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=($( ("$bin" 2>&1 || true) | sed -n 's/.*targets: //p' | tr -d ','))
fi

seed() {  # seed TARGET: the working corpus, with extra seeds that are not in git
  local t=$1 dir="$home/fuzz/$1"
  mkdir -p "$dir" "$home/fuzz/crashes/$t"
  cp -n Tests/Fuzz/corpus/"$t"/* "$dir"/ 2>/dev/null || true
  case $t in
    gguf) cp -n "$home"/test/*.gguf "$dir"/ 2>/dev/null || true ;;
    cues) cp -n Sources/ShippedFiles/Cues/*.json "$dir"/ ;;
    head) cp -n Sources/ShippedFiles/Heads/*.json "$dir"/ ;;
    chat-template)
      python3 - "$dir" "$home"/models/*.gguf "$home"/test/*.gguf <<'PY'
import sys, os, gguf
for i, path in enumerate(sys.argv[2:]):
    try:
        f = gguf.GGUFReader(path).fields.get("tokenizer.chat_template")
        if f: open(os.path.join(sys.argv[1], f"model-{i}"), "w").write(f.contents())
    except Exception: pass
PY
      ;;
  esac
}

# Leaks are checked; Tests/Fuzz/lsan.supp lists the one-time allocations of the Swift runtime.
export LSAN_OPTIONS="suppressions=$PWD/Tests/Fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
failed=0
printf '%-16s %12s %10s %10s %8s\n' target executions wall_s cpu_s crashes
min_execs="${FUZZ_MIN_EXECS:-0}"
for t in "${targets[@]}"; do
  seed "$t"
  log="$home/fuzz/$t.log"
  before=$(ls "$home/fuzz/crashes/$t" | wc -l)
  wall=0 cpu=0 execs=0 rounds=0 status=0 budget=$seconds
  while [ "$status" -eq 0 ]; do
    t0=$(date +%s)
    TIMEFORMAT='%U %S'
    { time "$bin" "$t" "$home/fuzz/$t" -max_total_time="$budget" -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 \
        -artifact_prefix="$home/fuzz/crashes/$t/" >"$log" 2>&1 || status=$?; } 2>"$home/fuzz/$t.time"
    w=$(( $(date +%s) - t0 ))
    c=$(awk '{printf "%.0f", $1 + $2}' "$home/fuzz/$t.time")
    e=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    wall=$(( wall + w )) cpu=$(( cpu + c )) execs=$(( execs + ${e:-0} )) rounds=$(( rounds + 1 ))
    [ "$min_execs" -gt 0 ] || break
    [ "$execs" -lt "$min_execs" ] || [ "$cpu" -lt "$seconds" ] || break
    [ "${e:-0}" -gt 0 ] && [ "$c" -gt 0 ] || break
    # What is missing, at this round's rates, plus 10%.
    need_cpu=$(( seconds - cpu )); need_execs=$(( (min_execs - execs) * c / e ))
    budget=$(( (need_cpu > need_execs ? need_cpu : need_execs) * 11 / 10 + 10 ))
  done
  crashes=$(( $(ls "$home/fuzz/crashes/$t" | wc -l) - before ))
  printf '%-16s %12s %10s %10s %8s%s\n' "$t" "$execs" "$wall" "$cpu" "$crashes" "$([ $rounds -gt 1 ] && echo "  ($rounds rounds)")"
  if [ "$status" -ne 0 ] || [ "$crashes" -gt 0 ]; then
    failed=1
    echo "  $t failed (exit $status); log: $log"; grep -m3 -E "ERROR|panic|Fatal error|deadly signal" "$log" | sed 's/^/  /' || true
  fi
done
exit $failed
