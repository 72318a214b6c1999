#!/usr/bin/env python3
"""Load benchmark: relay serve against llama.cpp's llama-server on the same GGUF, same run, loopback.

Usage: python3 scripts/bench_server.py RELAY LLAMA_SERVER [--model qwen2.5-coder-0.5b] [--np 4]
                                       [--clients 1,4,16] [--tokens 96] [--threads 2] [--rounds 5]

For each server and each number of concurrent clients, every client sends chat requests (greedy,
`max_tokens` tokens, a different prompt each) until the level's request count is reached
(max(4, clients)). Throughput is generated tokens over wall time; latency is per request.
A response is counted as corrupted when its text differs from the same prompt's answer from the same
server with one client (greedy decoding must not depend on what else is running).

Both servers stay up and take turns, level by level, for --rounds rounds; the table gives each
level's median round, and "vs 1 client" the median over rounds of the level's throughput over
one client's in the same round. This host's speed drifts by up to 1.7x over minutes (compute more than memory
bandwidth), so one pass per server would compare two different machines.
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


class Server:
    def __init__(self, name, cmd, base, model):
        self.name, self.model, self.base = name, model, base
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_health(base, self.proc)
        self.client = openai.OpenAI(base_url=base + "/v1", api_key="bench", max_retries=0, timeout=600)
        run_level(self.client, model, 1, 1, 8)  # warm-up: page in the weights
        self.reference = {}
        self.rounds = {}  # clients -> results of every round

    def level(self, clients, tokens):
        r = run_level(self.client, self.model, clients, max(4, clients), tokens)
        if not self.reference:
            self.reference = r["texts"]
        r["corrupted"] = sum(1 for i, t in r["texts"].items() if i in self.reference and self.reference[i] != t)
        self.rounds.setdefault(clients, []).append(r)
        print(f"  {self.name} {clients:>2} clients: {r['tps']:.1f} tok/s, p50 {r['p50']:.2f} s, p99 {r['p99']:.2f} s, "
              f"{r['failures']} failed, {r['corrupted']} differ", file=sys.stderr)

    def median(self, clients):
        rs = sorted(self.rounds[clients], key=lambda r: r["tps"])
        m = dict(rs[len(rs) // 2])
        m["failures"] = sum(r["failures"] for r in rs)
        m["corrupted"] = sum(r["corrupted"] for r in rs)
        m["requests"] = sum(r["requests"] for r in rs)
        m["range"] = (rs[0]["tps"], rs[-1]["tps"])
        return m

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("relay")
    ap.add_argument("llama_server")
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--np", type=int, default=4)
    ap.add_argument("--clients", default="1,4,16")
    ap.add_argument("--tokens", type=int, default=96)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    levels = [int(x) for x in a.clients.split(",")]
    path = subprocess.run([a.relay, "models", "list"], capture_output=True, text=True, check=True).stdout
    gguf = next(line.split()[-1] for line in path.splitlines() if line.split() and line.split()[0] == a.model)

    servers = []
    try:
        port = free_port()
        servers.append(Server("relay", [a.relay, "serve", "-m", gguf, "--port", str(port), "-np", str(a.np), "--queue", "64",
                                        "-t", str(a.threads), "-c", "1024", "--model-id", a.model], f"http://127.0.0.1:{port}", a.model))
        port = free_port()
        servers.append(Server("llama-server", [a.llama_server, "-m", gguf, "--port", str(port), "--host", "127.0.0.1", "-np", str(a.np),
                                               "-t", str(a.threads), "-c", str(1024 * a.np), "--alias", a.model],
                              f"http://127.0.0.1:{port}", a.model))
        for _ in range(a.rounds):
            for c in levels:
                for s in servers:
                    s.level(c, a.tokens)
    finally:
        for s in servers:
            s.stop()

    print(f"{a.model}, {a.tokens}-token greedy answers, -np {a.np}, {a.threads} threads, median of {a.rounds} rounds, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print("| server | clients | requests | failed | differ | tokens/s (median) | range | vs 1 client (median of rounds) | p50 s | p99 s |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    out = {}
    for s in servers:
        rows = [s.median(c) for c in levels]
        for r in rows:
            # Against one client in the same round, so that the machine's drift cancels out.
            ratios = sorted(a["tps"] / b["tps"] for a, b in zip(s.rounds[r["clients"]], s.rounds[levels[0]]))
            r["vs_one"] = ratios[len(ratios) // 2]
            print(f"| {s.name} | {r['clients']} | {r['requests']} | {r['failures']} | {r['corrupted']} | {r['tps']:.1f} | "
                  f"{r['range'][0]:.0f}–{r['range'][1]:.0f} | {r['vs_one']:.2f}x | {r['p50']:.2f} | {r['p99']:.2f} |")
        out[s.name] = [{k: v for k, v in r.items() if k != "texts"} for r in rows]
    json.dump(out, open(os.environ.get("BENCH_JSON", "/dev/null"), "w"))


if __name__ == "__main__":
    main()
