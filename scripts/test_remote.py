#!/usr/bin/env python3
"""The remote large-model backend (--large-url) against a real llama.cpp llama-server on loopback.

Usage: python3 scripts/test_remote.py path/to/relay path/to/llama-server

llama-server serves SmolLM2-135M as the "large" model; relay runs SmolLM2-135M locally as the small
one (-md). Checks: the remote text arrives whole across chunked requests; RelayGen hands over at
cues sent as stop strings (the cut cue is put back); RelayLLM's routers send their calls with
max_tokens = n; modes that need logits refuse; a remote server
that comes up late is reached by retries without losing or repeating text; a server that stays down
gives 503, or with --on-large-failure small an answer finished by the small model; generate and
eval take --large-url too.
"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

from test_server import run as run_tests  # one runner: prints ok/FAIL per test, counts failures

import openai

sys.path.insert(0, os.path.dirname(__file__))
from test_server import Server, expect, http, relay_of  # noqa: E402

HOME = os.environ.get("RELAY_HOME", os.path.expanduser("~/.cache/relay"))
SMOL = os.path.join(HOME, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
MODEL = "remote-smol"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    def __init__(self, binary, port):
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen([binary, "-m", SMOL, "--host", "127.0.0.1", "--port", str(port), "-t", "2", "-c", "4096",
                                      "-np", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait(self, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(self.base + "/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.2)
        raise RuntimeError("llama-server did not start")

    def complete(self, prompt, max_tokens):
        body = json.dumps({"prompt": prompt, "max_tokens": max_tokens, "temperature": 0}).encode()
        req = urllib.request.Request(self.base + "/v1/completions", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=300) as r:
            return json.loads(r.read())["choices"][0]["text"]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def relay_remote(relay, url, *args):
    return Server(relay, "--large-url", url, "--large-model", "smol", "-md", "smollm2-135m", "--model-id", MODEL,
                  "--temp", "0", *args)


def completion(server, prompt, max_tokens, **kw):
    return server.client().completions.create(model=MODEL, prompt=prompt, max_tokens=max_tokens, temperature=0, **kw)


# ---------------------------------------------------------------- tests


def test_large_text_whole_across_chunks(ctx):
    """64 tokens take two requests of 32: the joined text is llama-server's own greedy text."""
    prompt = "Once upon a time, in a small village,"
    r = completion(ctx["relay"], prompt, 64)
    t = relay_of(r)
    assert t["remote"]["requests"] >= 2 and t["tokens"]["large"] == r.usage.completion_tokens, t
    direct = ctx["llama"].complete(prompt, 80)
    got = r.choices[0].text
    assert direct.startswith(got) or got.startswith(direct), (got, direct)


def test_stream_remote(ctx):
    s = ctx["relay"]
    whole = completion(s, "The three primary colours are", 40).choices[0].text
    chunks = list(completion(s, "The three primary colours are", 40, stream=True))
    assert "".join(c.choices[0].text for c in chunks) == whole
    assert relay_of(chunks[-1])["remote"]["requests"] >= 1


def test_relaygen_remote(ctx):
    c = ctx["relay"].client()
    r = c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Explain how to add 17 and 25, step by step."}],
                                  max_tokens=120, temperature=0, extra_body={"relay_mode": "relaygen"})
    t = relay_of(r)
    print(f"      relaygen: {t['tokens']} hand-overs {t['handovers']} remote {t['remote']}")
    assert t["mode"] == "relaygen" and t["remote"]["requests"] >= 1
    segs = t["segments"]
    assert "".join(s["text"] for s in segs) == r.choices[0].message.content
    if t["handovers"] > 0:
        # The large model's turn ends in a cue the server cut and relay put back.
        first_large = next(s for s in segs if s["role"] == "large")
        assert re.search(r"(^|\s)(So|First|Then|Next|Now)$", first_large["text"]), first_large
        assert {s["role"] for s in segs} == {"large", "small"}


def test_relayllm_remote(ctx):
    """A router's calls go to the remote model: each asks for at most n tokens (max_tokens = n) and
    its text is llama-server's own greedy continuation of the tag-free context."""
    c = ctx["relay"].client()
    prompt = "The capital of France is"
    r = c.completions.create(model=MODEL, prompt=prompt, max_tokens=24, temperature=0,
                             extra_body={"relay_mode": "confidence-router:threshold=1,call=4"})
    t = relay_of(r)
    print(f"      confidence-router: {t['tokens']} calls {t['calls']} requested {t['large_tokens_requested']} remote {t['remote']}")
    # One request per call (the last call may be cut by max_tokens before it is sent).
    assert t["calls"] >= 1 and t["calls"] - 1 <= t["remote"]["requests"] <= t["calls"], t
    assert 0 < t["tokens"]["large"] <= t["large_tokens_requested"] == 4 * t["calls"], t
    segs = t["segments"]
    assert segs[0]["role"] == "small" and segs[0]["text"] == "<call>4</call>", segs
    # The first call saw only the prompt (the tag is stripped): its text is the server's continuation.
    direct = ctx["llama"].complete(prompt, 8)
    assert direct.startswith(segs[1]["text"]) and segs[1]["role"] == "large", (segs, direct)
    r = c.completions.create(model=MODEL, prompt=prompt, max_tokens=16, temperature=0,
                             extra_body={"relay_mode": "random-router:rate=0.5,call=2"})
    t = relay_of(r)
    assert t["mode"].startswith("random-router") and t["tokens"]["large"] <= 2 * t["calls"], t
    r = c.completions.create(model=MODEL, prompt=prompt, max_tokens=8, temperature=0, extra_body={"relay_mode": "relayllm"})
    assert relay_of(r)["mode"] == "relayllm", relay_of(r)


def test_logit_modes_refuse(ctx):
    c = ctx["relay"].client()
    for mode in ["speculative", "relaygen-sd"]:
        expect(400, lambda: c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}],
                                                      extra_body={"relay_mode": mode}),
               code="invalid_mode", words=["local large model"])


def test_retry_reaches_late_server(ctx):
    """The remote server starts a second after the request: retries with back-off reach it, and the
    answer is exactly its greedy text (nothing lost or repeated)."""
    port = free_port()
    s = relay_remote(ctx["relay_bin"], f"http://127.0.0.1:{port}", "--large-retries", "8", "--large-timeout", "60")
    try:
        out = {}
        thread = threading.Thread(target=lambda: out.setdefault("r", completion(s, "My favourite food is", 24)))
        thread.start()
        time.sleep(1.0)
        late = LlamaServer(ctx["llama_bin"], port)
        thread.join(timeout=240)
        r = out["r"]
        t = relay_of(r)
        print(f"      retries {t['remote']['retries']}, requests {t['remote']['requests']}")
        assert t["remote"]["retries"] >= 1, t
        direct = late.complete("My favourite food is", 40)
        assert direct.startswith(r.choices[0].text), (r.choices[0].text, direct)
        late.stop()
    finally:
        s.stop()


def test_down_server(ctx):
    dead = f"http://127.0.0.1:{free_port()}"
    s = relay_remote(ctx["relay_bin"], dead, "--large-retries", "1", "--large-timeout", "5")
    try:
        err = expect(503, lambda: completion(s, "Hello", 8), code="large_model_unavailable")
        assert "unavailable" in err["message"]
    finally:
        s.stop()
    s = relay_remote(ctx["relay_bin"], dead, "--large-retries", "1", "--large-timeout", "5", "--on-large-failure", "small")
    try:
        r = completion(s, "Hello", 8)
        t = relay_of(r)
        assert t["finished_on"] == "small" and "unavailable" in t["large_failure"], t
        assert t["tokens"]["small"] == r.usage.completion_tokens > 0 and t["tokens"]["large"] == 0
    finally:
        s.stop()


def test_generate_and_eval(ctx):
    relay, url = ctx["relay_bin"], ctx["llama"].base
    out = subprocess.run([relay, "generate", "--large-url", url, "-md", "smollm2-135m", "-p", "Say hi.", "-n", "16", "--temp", "0", "--json"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    g = json.loads(out.stdout)
    assert g["remote"]["requests"] >= 1 and g["tokens"]["large"] == g["generated_tokens"], g
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([relay, "eval", "--large-url", url, "-md", "smollm2-135m", "--task", "gsm8k", "--limit", "1",
                              "--modes", "large", "--max-tokens", "24", "--out", tmp], capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr
        with open(os.path.join(tmp, "results.jsonl")) as f:
            rec = json.loads(f.readline())
        assert rec["mode"] == "large" and rec["tokens"]["large"] > 0, rec
    out = subprocess.run([relay, "generate", "--large-url", url, "-md", "smollm2-135m", "-p", "x", "--mode", "speculative"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and "local large model" in out.stderr, out.stderr


TESTS = [test_large_text_whole_across_chunks, test_stream_remote, test_relaygen_remote, test_relayllm_remote, test_logit_modes_refuse,
         test_retry_reaches_late_server, test_down_server, test_generate_and_eval]


def main():
    relay_bin, llama_bin = sys.argv[1], sys.argv[2]
    only = sys.argv[3:]
    started = time.time()
    llama = LlamaServer(llama_bin, free_port())
    llama.wait()
    with tempfile.TemporaryDirectory() as tmp:
        cues = os.path.join(tmp, "cues.json")
        with open(cues, "w") as f:
            json.dump({"model": "smollm2-135m", "cues": [{"text": t, "delta": 0.1, "count": 1}
                                                          for t in ["So", "First", "Then", "Next", "Now"]]}, f)
        relay = relay_remote(relay_bin, llama.base, "--cues", cues, "-np", "2")
        ctx = {"relay": relay, "llama": llama, "relay_bin": relay_bin, "llama_bin": llama_bin}
        print(f"llama-server on port {llama.port}, relay serve on port {relay.port}")
        failed = run_tests(TESTS, ctx, only)
        relay.stop()
        llama.stop()
        print(f"{failed} failed, {time.time() - started:.1f} s")
        if failed:
            print("relay serve log:\n" + "".join(relay.log[-30:]))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
