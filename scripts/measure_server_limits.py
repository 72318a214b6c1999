#!/usr/bin/env python3
"""Measures what `relay serve` (default limits, SmolLM2-135M) does with the requests of the
hardening issue's part 4: eight 15 MiB prompts at once (wall time, the slowest /health meanwhile,
the server's peak RSS), a 17 MiB body, 200,000 stop strings, and 120 connections that send nothing.

Usage: python3 scripts/measure_server_limits.py path/to/relay
Loopback only; about 15 s. Prints one line per case.
"""
import json
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request


def outcome(reply):
    """An error's code, or a completion's finish reason and tokens."""
    if "error" in reply:
        return reply["error"]["code"] or reply["error"]["message"][:60]
    return f"{reply['choices'][0]['finish_reason']}, {reply['usage']['completion_tokens']} tokens"


def main():
    relay = sys.argv[1]
    proc = subprocess.Popen([relay, "serve", "-m", "smollm2-135m", "--port", "0"], stderr=subprocess.PIPE, text=True)
    port = None
    while port is None:
        line = proc.stderr.readline()
        if not line:
            sys.exit("relay serve did not start")
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        port = m and int(m.group(1))
    base = f"http://127.0.0.1:{port}"

    def post(body):
        req = urllib.request.Request(base + "/v1/completions", data=body, headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=600) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    try:
        body = json.dumps({"prompt": "a " * (15 << 19), "max_tokens": 4}).encode()
        health, done, results = [], threading.Event(), []

        def watch():
            while not done.is_set():
                t = time.time()
                urllib.request.urlopen(base + "/health").read()
                health.append(time.time() - t)
                time.sleep(0.05)

        watcher = threading.Thread(target=watch)
        watcher.start()
        t0 = time.time()
        clients = [threading.Thread(target=lambda: results.append(post(body))) for _ in range(8)]
        for c in clients:
            c.start()
        for c in clients:
            c.join()
        seconds = time.time() - t0
        done.set()
        watcher.join()
        peak = re.search(r"VmHWM:\s+(\d+) kB", open(f"/proc/{proc.pid}/status").read()).group(1)
        codes = sorted({f"{s} {outcome(r)}" for s, r in results})
        print(f"eight 15 MiB prompts at once: {seconds:.2f} s, {codes}, slowest /health {max(health):.3f} s, peak RSS {int(peak) >> 10} MB")

        t0 = time.time()
        status, reply = post(b"x" * (17 << 20))
        print(f"17 MiB body: {status} {outcome(reply)} in {time.time() - t0:.2f} s")

        t0 = time.time()
        status, reply = post(json.dumps({"prompt": "Hi", "max_tokens": 16, "stop": [f"stop{i}" for i in range(200_000)]}).encode())
        print(f"200,000 stop strings: {status} {outcome(reply)} in {time.time() - t0:.2f} s")

        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(120)]
        for s in socks:
            s.setblocking(False)
        t0, closed = time.time(), set()
        while time.time() - t0 < 30 and len(closed) < len(socks):
            for i, s in enumerate(socks):
                try:
                    if i not in closed and s.recv(1) == b"":
                        closed.add(i)
                except BlockingIOError:
                    pass
                except ConnectionResetError:
                    closed.add(i)
            time.sleep(0.1)
        print(f"120 connections that send nothing: {len(closed)} closed by the server after {time.time() - t0:.1f} s")
        for s in socks:
            s.close()
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
