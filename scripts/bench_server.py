#!/usr/bin/env python3
"""Load benchmark: relay serve against llama.cpp's llama-server on the same GGUF, same run, loopback.

Usage: python3 scripts/bench_server.py RELAY LLAMA_SERVER [--model qwen2.5-coder-0.5b] [--np 4]
                                       [--clients 1,4,16] [--tokens 96] [--threads 2] [--rounds 5]
                                       [--draft qwen2.5-coder-0.5b --modes large,speculative,relaygen-sd]
                                       [--no-llama] [--long-prompt 2000] [--batch-size 64]

With --draft, relay serve loads both models and each mode of --modes is a row of its own (the
request's `relay_mode`); "vs large" divides a mode's throughput by large's at the same level in the
same round. --long-prompt N: while 3 streams decode, one N-token prompt arrives; prints the streams'
p99 gap between chunks during its prefill against their median gap outside it, and its time to
first token (relay only, mode large and the first other mode).

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


def run_level(client, model, clients, requests, tokens, extra=None):
    def one(i):
        t0 = time.time()
        r = client.chat.completions.create(model=model, temperature=0, max_tokens=tokens, seed=1, extra_body=extra,
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
    """One server process, or one mode of a relay server that another Server object started (`same`)."""
    def __init__(self, name, cmd, base, model, mode=None, same=None):
        self.name, self.model, self.base = name, model, base
        self.extra = {"relay_mode": mode} if mode else None
        self.proc = same.proc if same else subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.owner = same is None
        wait_health(base, self.proc)
        self.client = openai.OpenAI(base_url=base + "/v1", api_key="bench", max_retries=0, timeout=600)
        run_level(self.client, model, 1, 1, 8, self.extra)  # warm-up: page in the weights
        self.reference = {}
        self.rounds = {}  # clients -> results of every round

    def level(self, clients, tokens):
        r = run_level(self.client, self.model, clients, max(4, clients), tokens, self.extra)
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
        if self.owner:
            self.proc.terminate()
            self.proc.wait(timeout=60)


def long_prompt(server, n_tokens, tokens):
    """3 streams decode; an n-token prompt arrives. Returns (p99 gap during its prefill, median and
    p99 gap outside it, its time to first token, its tokens), gaps between the streams' chunks."""
    text = f"Notes kept by {server.name}. " + " ".join(f"Item {i}: the {TOPICS[i % len(TOPICS)]} was noted." for i in range(n_tokens // 13))
    stamps, window = [[] for _ in range(3)], {}

    def stream(k):
        for chunk in server.client.chat.completions.create(
                model=server.model, temperature=0, max_tokens=tokens, seed=1, stream=True, extra_body=server.extra,
                messages=[{"role": "user", "content": f"Write a long story about {TOPICS[k]}."}]):
            if chunk.choices and chunk.choices[0].delta.content:
                stamps[k].append(time.time())

    def long():
        while min(len(s) for s in stamps) < 16:
            time.sleep(0.05)
        window["start"] = time.time()
        r = server.client.chat.completions.create(
            model=server.model, temperature=0, max_tokens=1, seed=1, stream=True, extra_body=server.extra,
            stream_options={"include_usage": True}, messages=[{"role": "user", "content": text + "\nHow many items are there?"}])
        for chunk in r:
            if "end" not in window:
                window["end"] = time.time()
            if chunk.usage:
                window["tokens"] = chunk.usage.prompt_tokens
        window.setdefault("end", time.time())

    with cf.ThreadPoolExecutor(4) as pool:
        for f in [pool.submit(stream, k) for k in range(3)] + [pool.submit(long)]:
            f.result()
    inside, outside = [], []
    for s in stamps:
        for a, b in zip(s, s[1:]):
            (inside if window["start"] <= b and a <= window["end"] else outside).append(b - a)
    inside.sort(), outside.sort()

    def q(xs, f):
        return xs[min(len(xs) - 1, int(round(f * (len(xs) - 1))))] if xs else float("nan")
    return q(inside, 0.99), q(outside, 0.5), q(outside, 0.99), window["end"] - window["start"], window.get("tokens", 0)


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
    ap.add_argument("--draft", help="small model for relay serve -md (then --modes are compared)")
    ap.add_argument("--modes", default="large")
    ap.add_argument("--no-llama", action="store_true", help="relay serve only")
    ap.add_argument("--long-prompt", type=int, default=0, help="tokens of the long prompt of the prefill test (0: no test)")
    ap.add_argument("--batch-size", type=int, help="relay serve -b")
    a = ap.parse_args()
    levels = [int(x) for x in a.clients.split(",")]
    listing = subprocess.run([a.relay, "models", "list"], capture_output=True, text=True, check=True).stdout

    def path(name):
        return next(line.split()[-1] for line in listing.splitlines() if line.split() and line.split()[0] == name)

    gguf = path(a.model)
    modes = a.modes.split(",") if a.draft else [None]
    servers = []
    try:
        port = free_port()
        cmd = [a.relay, "serve", "-m", gguf, "--port", str(port), "-np", str(a.np), "--queue", "64",
               "-t", str(a.threads), "-c", str(max(1024, 2 * a.long_prompt)), "--model-id", a.model]
        cmd += ["-md", path(a.draft)] if a.draft else []
        cmd += ["-b", str(a.batch_size)] if a.batch_size else []
        for mode in modes:
            servers.append(Server(f"relay {mode}" if mode else "relay", cmd, f"http://127.0.0.1:{port}", a.model, mode,
                                  servers[0] if servers else None))
        if not a.no_llama:
            port = free_port()
            servers.append(Server("llama-server", [a.llama_server, "-m", gguf, "--port", str(port), "--host", "127.0.0.1", "-np", str(a.np),
                                                   "-t", str(a.threads), "-c", str(1024 * a.np), "--alias", a.model],
                                  f"http://127.0.0.1:{port}", a.model))
        for _ in range(a.rounds):
            for c in levels:
                for s in servers:
                    s.level(c, a.tokens)
        prefill = []
        if a.long_prompt:
            for s in servers[:2] if a.draft else servers[:1]:
                prefill.append((s.name,) + long_prompt(s, a.long_prompt, 4 * a.tokens))
    finally:
        for s in servers:
            s.stop()

    print(f"{a.model}{' + ' + a.draft if a.draft else ''}, {a.tokens}-token greedy answers, -np {a.np}, {a.threads} threads, "
          f"median of {a.rounds} rounds, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print("| server | clients | requests | failed | differ | tokens/s (median) | range | vs 1 client | vs large | p50 s | p99 s |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    out = {}
    for s in servers:
        rows = [s.median(c) for c in levels]
        for r in rows:
            # Ratios within one round, then their median, so that the machine's drift cancels out.
            def ratio(xs, ys):
                rs = sorted(x["tps"] / y["tps"] for x, y in zip(xs, ys))
                return rs[len(rs) // 2]
            r["vs_one"] = ratio(s.rounds[r["clients"]], s.rounds[levels[0]])
            base = servers[0] if a.draft and s.extra else None
            r["vs_large"] = ratio(s.rounds[r["clients"]], base.rounds[r["clients"]]) if base else None
            vs_large = f"{r['vs_large']:.2f}x" if base else "–"
            print(f"| {s.name} | {r['clients']} | {r['requests']} | {r['failures']} | {r['corrupted']} | {r['tps']:.1f} | "
                  f"{r['range'][0]:.0f}–{r['range'][1]:.0f} | {r['vs_one']:.2f}x | {vs_large} | {r['p50']:.2f} | {r['p99']:.2f} |")
        out[s.name] = [{k: v for k, v in r.items() if k != "texts"} for r in rows]
    if a.draft:
        # Greedy speculation is greedy decoding: every mode that keeps the large model's tokens answers as large did.
        same = {s.name: sum(1 for i, t in s.reference.items() if servers[0].reference.get(i) == t) for s in servers[1:len(modes)]}
        print("single-client answers equal to large's: " + ", ".join(f"{k} {v}/{len(servers[0].reference)}" for k, v in same.items()))
    for name, p99, median, p99_out, ttft, n in prefill:
        # Drafting modes stream a round's tokens at once, so their gaps outside the prefill are
        # bursty too: the p99 outside it is the baseline to read the p99 inside against.
        print(f"{name}: a {n}-token prompt among 3 streams: their p99 gap during its prefill {p99 * 1000:.0f} ms, "
              f"median gap outside it {median * 1000:.0f} ms ({p99 / median:.1f}x; p99 outside it {p99_out * 1000:.0f} ms), "
              f"its time to first token {ttft:.1f} s")
    json.dump(out, open(os.environ.get("BENCH_JSON", "/dev/null"), "w"))


if __name__ == "__main__":
    main()
