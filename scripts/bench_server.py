#!/usr/bin/env python3
"""Load benchmark: relay serve against llama.cpp's llama-server on the same GGUF, same run, loopback.

Usage: python3 scripts/bench_server.py RELAY LLAMA_SERVER [--model qwen2.5-coder-0.5b] [--np 4]
                                       [--clients 1,4,16] [--tokens 96] [--threads 2]

For each server and each number of concurrent clients, every client sends chat requests (greedy,
`max_tokens` tokens, a different prompt each) until the level's request count is reached
(max(4, clients)). Throughput is generated tokens over wall time; latency is per request.
A response is counted as corrupted when its text differs from the same prompt's answer from the same
server with one client (greedy decoding must not depend on what else is running).
"""
import argparse
import concurrent.futures as cf
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import openai

TOPICS = ["a lighthouse keeper", "a lost robot", "the first snow", "a dragon who cannot fly", "a chess tournament",
          "a river at night", "an old clock", "a city under the sea", "a friendly ghost", "a space station",
          "a bakery at dawn", "a forgotten library", "a long train journey", "a desert storm", "a tiny island",
          "a mountain village", "a paper boat", "a secret garden", "a broken violin", "a summer festival"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_health(base, proc, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(base + "/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError("server did not become healthy")


def run_level(client, model, clients, requests, tokens):
    def one(i):
        t0 = time.time()
        r = client.chat.completions.create(model=model, temperature=0, max_tokens=tokens, seed=1,
                                           messages=[{"role": "user", "content": f"Write a story about {TOPICS[i % len(TOPICS)]}."}])
        return i, time.time() - t0, r.usage.completion_tokens, r.choices[0].message.content

    started = time.time()
    results, failures = [], 0
    with cf.ThreadPoolExecutor(clients) as pool:
        for f in [pool.submit(one, i) for i in range(requests)]:
            try:
                results.append(f.result())
            except Exception as e:  # noqa: BLE001 - counted as failures
                failures += 1
                print(f"  request failed: {e!r}", file=sys.stderr)
    wall = time.time() - started
    lat = sorted(r[1] for r in results)

    def pct(p):
        return lat[min(len(lat) - 1, int(round(p / 100 * (len(lat) - 1))))] if lat else float("nan")

    return {"clients": clients, "requests": requests, "failures": failures, "tokens": sum(r[2] for r in results),
            "wall": wall, "tps": sum(r[2] for r in results) / wall, "p50": pct(50), "p99": pct(99),
            "texts": {r[0]: r[3] for r in results}}


def bench(name, cmd, base, model, levels, tokens):
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_health(base, proc)
        client = openai.OpenAI(base_url=base + "/v1", api_key="bench", max_retries=0, timeout=600)
        run_level(client, model, 1, 1, 8)  # warm-up: page in the weights
        rows, reference = [], {}
        for c in levels:
            r = run_level(client, model, c, max(4, c), tokens)
            if c == levels[0]:
                reference = r["texts"]
            r["corrupted"] = sum(1 for i, t in r["texts"].items() if i in reference and reference[i] != t)
            rows.append(r)
            print(f"  {name} {c:>2} clients: {r['tps']:.1f} tok/s, p50 {r['p50']:.2f} s, p99 {r['p99']:.2f} s, "
                  f"{r['failures']} failed, {r['corrupted']} differ", file=sys.stderr)
        return rows
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("relay")
    ap.add_argument("llama_server")
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--np", type=int, default=4)
    ap.add_argument("--clients", default="1,4,16")
    ap.add_argument("--tokens", type=int, default=96)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    levels = [int(x) for x in a.clients.split(",")]
    path = subprocess.run([a.relay, "models", "list"], capture_output=True, text=True, check=True).stdout
    gguf = next(line.split()[-1] for line in path.splitlines() if line.split() and line.split()[0] == a.model)

    port = free_port()
    relay = bench("relay", [a.relay, "serve", "-m", gguf, "--port", str(port), "-np", str(a.np), "--queue", "64", "-t", str(a.threads),
                            "-c", "1024", "--model-id", a.model],
                  f"http://127.0.0.1:{port}", a.model, levels, a.tokens)
    port = free_port()
    llama = bench("llama-server", [a.llama_server, "-m", gguf, "--port", str(port), "--host", "127.0.0.1", "-np", str(a.np),
                                   "-t", str(a.threads), "-c", str(1024 * a.np), "--alias", a.model],
                  f"http://127.0.0.1:{port}", a.model, levels, a.tokens)

    print(f"{a.model}, {a.tokens}-token greedy answers, -np {a.np}, {a.threads} threads, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print("| server | clients | requests | failed | differ | tokens/s | vs 1 client | p50 s | p99 s |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    for name, rows in [("relay", relay), ("llama-server", llama)]:
        for r in rows:
            print(f"| {name} | {r['clients']} | {r['requests']} | {r['failures']} | {r['corrupted']} | {r['tps']:.1f} | "
                  f"{r['tps'] / rows[0]['tps']:.2f}x | {r['p50']:.2f} | {r['p99']:.2f} |")
    json.dump({"relay": [{k: v for k, v in r.items() if k != "texts"} for r in relay],
               "llama": [{k: v for k, v in r.items() if k != "texts"} for r in llama]},
              open(os.environ.get("BENCH_JSON", "/dev/null"), "w"))


if __name__ == "__main__":
    main()
