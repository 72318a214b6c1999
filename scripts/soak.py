#!/usr/bin/env python3
"""Soak test of `relay serve` on loopback: bounded in time and count, stops by itself.

Usage: python3 scripts/soak.py RELAY [--minutes 10] [--clients 64] [--idle 200]

Starts two servers with SmolLM2-135M: A, local, with 4 slots and room for every client and idle
socket (--max-connections; at the default 256 the 200 idle sockets and 64 clients overflow it, and
the connections over the cap are closed at once), and B, whose large model is a fake
OpenAI-compatible backend (started here) that fails a quarter of its calls (HTTP 500, a hang past
the client's timeout, or a connection closed mid-reply). 64 client threads then send, for the
given minutes, a mix of: greedy chat requests (answer checked against the single-client answer),
greedy streams (the same check), streams cancelled half-way, malformed JSON, oversized bodies,
non-JSON content types, and requests to B. 200 idle sockets are held open (reopened when the server
closes them). A separate client asks /health every 0.5 s; RSS of A is sampled every 5 s.
Prints a table and exits non-zero on a crash, a wrong answer or a missed target.
"""
import argparse
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "smollm2-135m"
PROMPTS = ["What is 2 + 2?", "Name a colour.", "Say hello in French.", "What is the capital of Italy?",
           "Count from 1 to 5.", "Write one word that rhymes with cat."]


class FakeLarge(BaseHTTPRequestHandler):
    """A /v1/completions backend that fails a quarter of its calls in three ways."""
    protocol_version = "HTTP/1.1"
    calls = 0
    lock = threading.Lock()

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with FakeLarge.lock:
            FakeLarge.calls += 1
            n = FakeLarge.calls
        fault = n % 12
        if fault == 0:
            self.send_response(500); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"{}")
        elif fault == 4:
            time.sleep(30)  # past the server's --large-timeout
            self.close_connection = True
        elif fault == 8:
            self.send_response(200); self.send_header("Content-Length", "500"); self.end_headers()
            self.wfile.write(b'{"choices": [{"te'); self.wfile.flush()
            self.close_connection = True
        else:
            req = json.loads(body or b"{}")
            out = json.dumps({"choices": [{"text": " four.", "finish_reason": "length" if req.get("max_tokens", 1) <= 2 else "stop",
                                           "index": 0}]}).encode()
            self.send_response(200); self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out))); self.end_headers(); self.wfile.write(out)


def start_server(relay, *args):
    proc = subprocess.Popen([relay, "serve", "--port", "0", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        line = proc.stderr.readline()
        if "listening on" in line:
            port = int(line.split("127.0.0.1:")[1].split()[0].rstrip(")"))
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
            return proc, port
        if not line and proc.poll() is not None:
            break
    raise RuntimeError("relay serve did not start")


def request(port, body, path="/v1/chat/completions", ctype="application/json", timeout=120):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("POST", path, body=body, headers={"Content-Type": ctype})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def chat_body(prompt, stream=False, max_tokens=24):
    return json.dumps({"model": MODEL, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
                       "temperature": 0, "stream": stream}).encode()


def stream_text(port, prompt, cancel_after=None):
    """A streamed answer's text; with cancel_after, the socket is closed after that many events."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    c.request("POST", "/v1/chat/completions", body=chat_body(prompt, stream=True), headers={"Content-Type": "application/json"})
    r = c.getresponse()
    if r.status != 200:
        r.read(); c.close()
        return r.status, None
    text, events = "", 0
    for raw in r:
        line = raw.decode().strip()
        if not line.startswith("data: "):
            continue
        if line == "data: [DONE]":
            break
        events += 1
        for ch in json.loads(line[6:]).get("choices", []):
            text += ch.get("delta", {}).get("content") or ""
        if cancel_after is not None and events >= cancel_after:
            c.sock.close()
            return 200, None
    c.close()
    return 200, text


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("relay")
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--idle", type=int, default=200)
    a = ap.parse_args()

    fake = ThreadingHTTPServer(("127.0.0.1", 0), FakeLarge)
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    server_a, port_a = start_server(a.relay, "-m", MODEL, "-md", MODEL, "-np", "4", "--queue", "128", "-c", "1024", "-t", "1",
                                    "--max-connections", str(a.clients + a.idle + 64))
    server_b, port_b = start_server(a.relay, "-md", MODEL, "--large-url", f"http://127.0.0.1:{fake.server_port}", "-np", "2",
                                    "--queue", "128", "-c", "1024", "-t", "1", "--large-timeout", "2", "--large-retries", "1",
                                    "--model-id", MODEL)
    # The single-client answers every concurrent answer must equal.
    reference = {p: json.loads(request(port_a, chat_body(p))[1])["choices"][0]["message"]["content"] for p in PROMPTS}

    stop_at = time.time() + a.minutes * 60
    counts, lock = {}, threading.Lock()
    wrong = []

    def count(kind, outcome):
        with lock:
            counts.setdefault(kind, {}).setdefault(outcome, 0)
            counts[kind][outcome] += 1

    def client(i):
        rng = random.Random(i)
        while time.time() < stop_at:
            kind = rng.choices(["chat", "stream", "cancel", "malformed", "oversized", "form", "remote"],
                               [30, 20, 15, 10, 5, 5, 15])[0]
            p = rng.choice(PROMPTS)
            try:
                if kind == "chat":
                    status, body = request(port_a, chat_body(p))
                    ok = status == 200 and json.loads(body)["choices"][0]["message"]["content"] == reference[p]
                    if status == 200 and not ok:
                        wrong.append((p, body[:200]))
                    count(kind, "ok" if ok else f"HTTP {status}" if status != 200 else "wrong")
                elif kind == "stream":
                    status, text = stream_text(port_a, p)
                    if status == 200 and text != reference[p]:
                        wrong.append((p, text))
                    count(kind, "ok" if status == 200 and text == reference[p] else f"HTTP {status}" if status != 200 else "wrong")
                elif kind == "cancel":
                    status, _ = stream_text(port_a, p, cancel_after=2)
                    count(kind, "ok" if status == 200 else f"HTTP {status}")
                elif kind == "malformed":
                    status, _ = request(port_a, b'{"messages": [', timeout=30)
                    count(kind, "ok" if status == 400 else f"HTTP {status}")
                elif kind == "oversized":
                    status, _ = request(port_a, b'{"prompt": "' + b"x" * (17 << 20) + b'"}', path="/v1/completions", timeout=60)
                    count(kind, "ok" if status == 413 else f"HTTP {status}")
                elif kind == "form":
                    status, _ = request(port_a, b"prompt=hi", path="/v1/completions", ctype="application/x-www-form-urlencoded", timeout=30)
                    count(kind, "ok" if status in (400, 415) else f"HTTP {status}")
                else:
                    status, body = request(port_b, chat_body(p, max_tokens=8), timeout=60)
                    count(kind, "ok" if status == 200 else f"HTTP {status}")
            except (OSError, http.client.HTTPException) as e:
                count(kind, type(e).__name__)

    idle_open = [0]

    def idler():
        socks = []
        while time.time() < stop_at:
            socks = [s for s in socks if s.fileno() != -1]
            while len(socks) < a.idle // 4:
                try:
                    s = socket.create_connection(("127.0.0.1", port_a), timeout=5)
                    s.send(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n")  # half a header, then nothing
                    socks.append(s)
                except OSError:
                    count("idle", "refused")
                    break
            for s in list(socks):
                s.setblocking(False)
                try:
                    if s.recv(1) == b"":
                        s.close(); count("idle", "closed by server")
                except BlockingIOError:
                    pass
                except OSError:
                    s.close(); count("idle", "closed by server")
            with lock:
                idle_open[0] = sum(1 for s in socks if s.fileno() != -1)
            time.sleep(1)
        for s in socks:
            s.close()

    health = []

    def prober():
        while time.time() < stop_at:
            t = time.time()
            try:
                c = http.client.HTTPConnection("127.0.0.1", port_a, timeout=10)
                c.request("GET", "/health"); c.getresponse().read(); c.close()
                health.append(time.time() - t)
            except OSError:
                health.append(10.0)
            time.sleep(0.5)

    rss = []

    def sampler():
        start = time.time()
        while time.time() < stop_at and server_a.poll() is None:
            rss.append((time.time() - start, rss_kb(server_a.pid)))
            time.sleep(5)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(a.clients)]
    threads += [threading.Thread(target=idler) for _ in range(4)] + [threading.Thread(target=prober), threading.Thread(target=sampler)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    alive_a, alive_b = server_a.poll() is None, server_b.poll() is None
    server_a.terminate(); server_b.terminate()
    server_a.wait(60); server_b.wait(60)
    fake.shutdown()

    health.sort()
    p99 = health[int(len(health) * 0.99) - 1] if health else float("nan")
    peak = max(k for _, k in rss) / 1024
    at = lambda minute: min(rss, key=lambda x: abs(x[0] - minute * 60))[1] / 1024
    growth = at(a.minutes) - at(min(2, a.minutes / 5))
    print(f"soak: {a.minutes:g} min, {a.clients} clients, {a.idle} idle sockets, remote backend failing 1 call in 4 "
          f"({FakeLarge.calls} backend calls)")
    print(f"{'kind':<10} outcomes")
    for kind in sorted(counts):
        print(f"{kind:<10} " + ", ".join(f"{k}: {v}" for k, v in sorted(counts[kind].items())))
    print(f"crashes: {0 if alive_a and alive_b else 1} (server A {'alive' if alive_a else 'DEAD'}, B {'alive' if alive_b else 'DEAD'})")
    print(f"wrong answers: {len(wrong)}")
    print(f"RSS of A: peak {peak:.0f} MB, minute 2 {at(min(2, a.minutes / 5)):.0f} MB, end {at(a.minutes):.0f} MB, growth {growth:+.0f} MB")
    print(f"/health p99: {p99 * 1000:.0f} ms over {len(health)} probes")
    for p, t in wrong[:5]:
        print(f"  wrong: {p!r} -> {t!r}")
    ok = alive_a and alive_b and not wrong and growth < 50 and p99 < 0.1
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
