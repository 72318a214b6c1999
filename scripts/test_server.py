#!/usr/bin/env python3
"""Drives `relay serve` with the official `openai` client: chat, completion, streaming, errors,
concurrent clients, cancellation, metrics, shutdown, and the relay telemetry; and with raw sockets
what a client should not be able to do: hold connections, send slow or huge requests.

Usage: python3 scripts/test_server.py path/to/relay

Starts the server on a free loopback port with SmolLM2-135M as both the large and the small model
(so every mode runs: speculative accepts every draft, RelayGen hands over at the test cues), runs
each test, prints one line per test and exits non-zero if any failed.
"""
import asyncio
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request

import openai

MODEL = "smollm2-135m"
RELAY = None  # the binary under test (main sets it)
KEY = "test-key"


class Server:
    """A `relay serve` process on a port the OS picked; the port is read from its first line."""

    def __init__(self, relay, *args, env=None):
        self.proc = subprocess.Popen([relay, "serve", "--port", "0", *args], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, env=env)
        self.log = []
        deadline = time.time() + 120
        self.port = None
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.log.append(line)
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        if self.port is None:
            self.proc.kill()
            raise RuntimeError("relay serve did not start:\n" + "".join(self.log) + self.proc.stderr.read())
        threading.Thread(target=self._drain, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.port}"

    def _drain(self):
        for line in self.proc.stderr:
            self.log.append(line)

    def client(self, key=KEY, **kw):
        return openai.OpenAI(base_url=self.base + "/v1", api_key=key, max_retries=0, timeout=300, **kw)

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=timeout)
        return self.proc.returncode


def chat(client, content, **kw):
    return client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": content}], **kw)


def relay_of(obj):
    """The extra `relay` object of a response or chunk (the client keeps unknown fields)."""
    extra = obj.model_extra or {}
    assert "relay" in extra, f"no relay telemetry in {obj}"
    return extra["relay"]


class Reply:
    def __init__(self, status, body, headers):
        self.status_code, self.text, self.headers = status, body.decode(), headers

    def json(self):
        return json.loads(self.text)


def http(url, body=None, key=KEY):
    """A plain request, for what the openai client cannot send (malformed JSON) or does not cover."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    req = urllib.request.Request(url, data=body, headers=headers, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=300) as r:
            return Reply(r.status, r.read(), r.headers)
    except urllib.error.HTTPError as e:
        return Reply(e.code, e.read(), e.headers)


def raw(server, path, body):
    return http(server.base + path, body)


# ---------------------------------------------------------------- tests


def test_models(s):
    ids = [m.id for m in s.client().models.list()]
    assert ids == [MODEL], ids


def test_chat(s):
    r = chat(s.client(), "What is 2 + 2?", max_tokens=24, temperature=0)
    text = r.choices[0].message.content
    assert text.strip(), "empty answer"
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].finish_reason in ("stop", "length")
    assert r.usage.prompt_tokens > 10 and 0 < r.usage.completion_tokens <= 24
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    t = relay_of(r)
    assert t["mode"] == "large" and t["tokens"]["large"] == r.usage.completion_tokens and t["tokens"]["small"] == 0
    assert t["large_share"] == 1.0 and t["handovers"] == 0
    assert "".join(seg["text"] for seg in t["segments"]) == text


def test_completion_length(s):
    r = s.client().completions.create(model=MODEL, prompt="The capital of France is", max_tokens=5, temperature=0)
    assert r.choices[0].finish_reason == "length", r
    assert r.usage.completion_tokens == 5
    assert r.choices[0].text


def test_completion_stop(s):
    c = s.client()
    whole = c.completions.create(model=MODEL, prompt="1, 2, 3, 4,", max_tokens=12, temperature=0).choices[0].text
    assert " 6" in whole, whole
    cut = c.completions.create(model=MODEL, prompt="1, 2, 3, 4,", max_tokens=12, temperature=0, stop=[" 6"])
    assert cut.choices[0].finish_reason == "stop"
    assert cut.choices[0].text == whole[: whole.index(" 6")], (cut.choices[0].text, whole)


def test_stream_matches_whole(s):
    c = s.client()
    whole = chat(c, "Name three colours.", max_tokens=30, temperature=0)
    chunks = list(chat(c, "Name three colours.", max_tokens=30, temperature=0, stream=True,
                       stream_options={"include_usage": True}))
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == whole.choices[0].message.content, (text, whole.choices[0].message.content)
    assert chunks[0].choices[0].delta.role == "assistant"
    finals = [ch for ch in chunks if ch.choices and ch.choices[0].finish_reason]
    assert len(finals) == 1 and finals[0].choices[0].finish_reason == whole.choices[0].finish_reason
    last = chunks[-1]
    assert last.choices == [] and last.usage.completion_tokens == whole.usage.completion_tokens
    assert all(ch.usage is None for ch in chunks[:-1])
    assert relay_of(finals[0])["tokens"]["large"] == whole.usage.completion_tokens
    assert all((ch.model_extra or {}).get("relay_role") == "large" for ch in chunks if ch.choices and ch.choices[0].delta.content)


def test_stream_completion_without_usage(s):
    chunks = list(s.client().completions.create(model=MODEL, prompt="Once upon a time", max_tokens=8, temperature=0, stream=True))
    assert chunks[-1].choices[0].finish_reason == "length"
    assert "relay" in (chunks[-1].model_extra or {}), "the last chunk carries the telemetry"
    assert all(ch.usage is None for ch in chunks)


def test_seed_repeats(s):
    c = s.client()
    a = chat(c, "Write a word.", max_tokens=12, temperature=1.0, seed=7).choices[0].message.content
    b = chat(c, "Write a word.", max_tokens=12, temperature=1.0, seed=7).choices[0].message.content
    assert a == b, (a, b)


def test_speculative_mode(s):
    c = s.client()
    plain = chat(c, "Count from 1 to 10.", max_tokens=32, temperature=0)
    # The full draft vocabulary, so that the drafter is exactly the model it drafts for.
    spec = chat(c, "Count from 1 to 10.", max_tokens=32, temperature=0, extra_body={"relay_mode": "speculative:draft-vocab=0"})
    assert spec.choices[0].message.content == plain.choices[0].message.content
    t = relay_of(spec)
    assert t["mode"] == "speculative:draft-vocab=0" and t["drafted"] > 0
    # The same model drafts and verifies: every draft is accepted.
    assert t["accepted"] == t["drafted"] and t["acceptance_rate"] == 1.0


def test_relaygen_mode(s):
    r = chat(s.client(), "Explain step by step: what is 12 * 13?", max_tokens=80, temperature=0, extra_body={"relay_mode": "relaygen"})
    t = relay_of(r)
    assert t["mode"] == "relaygen"
    assert t["tokens"]["large"] + t["tokens"]["small"] == r.usage.completion_tokens
    assert 0 <= t["large_share"] <= 1
    roles = {seg["role"] for seg in t["segments"]}
    if t["handovers"] > 0:
        assert roles == {"large", "small"}, t


def test_small_mode(s):
    t = relay_of(chat(s.client(), "Hi", max_tokens=8, temperature=0, extra_body={"relay_mode": "small"}))
    assert t["tokens"]["large"] == 0 and t["tokens"]["small"] > 0 and t["large_share"] == 0


def test_logprobs(s):
    c = s.client()
    r = chat(c, "Name a colour.", max_tokens=6, temperature=0, logprobs=True, top_logprobs=3)
    content = r.choices[0].logprobs.content
    assert len(content) == r.usage.completion_tokens
    for e in content:
        assert e.logprob <= 0 and len(e.top_logprobs) == 3
        assert [t.logprob for t in e.top_logprobs] == sorted((t.logprob for t in e.top_logprobs), reverse=True)
        assert e.top_logprobs[0].token == e.token and abs(e.top_logprobs[0].logprob - e.logprob) < 1e-5  # greedy
    assert "".join(e.token for e in content).startswith(r.choices[0].message.content[:5])
    p = s.client().completions.create(model=MODEL, prompt="The sky is", max_tokens=4, temperature=0, logprobs=2)
    lp = p.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == len(lp.text_offset) == 4
    assert all(len(t) <= 2 for t in lp.top_logprobs) and lp.text_offset[0] == 0
    # Streamed: each chunk carries its tokens' entries, and together they are the whole answer's.
    chunks = list(chat(c, "Name a colour.", max_tokens=6, temperature=0, logprobs=True, top_logprobs=3, stream=True))
    streamed = [e for ch in chunks if ch.choices and ch.choices[0].logprobs for e in ch.choices[0].logprobs.content]
    assert [(e.token, round(e.logprob, 4)) for e in streamed] == [(e.token, round(e.logprob, 4)) for e in content], (streamed, content)
    ps = list(s.client().completions.create(model=MODEL, prompt="The sky is", max_tokens=4, temperature=0, logprobs=2, stream=True))
    offsets = [o for ch in ps if ch.choices and ch.choices[0].logprobs for o in ch.choices[0].logprobs.text_offset]
    assert offsets == lp.text_offset, (offsets, lp.text_offset)
    expect(400, lambda: chat(c, "Hi", logprobs=True, extra_body={"relay_mode": "relaygen"}), code="invalid_mode", words=["log-probabilities"])


def token_ids(text):
    out = subprocess.run([RELAY, "tokenize", "-m", MODEL, "--no-bos"], input=text, capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def complete(c, prompt, **kw):
    return c.completions.create(model=MODEL, prompt=prompt, temperature=0, **kw)


def test_sampling_parameters(s):
    c = s.client()
    base = complete(c, "The capital of France is", max_tokens=8, logprobs=1)
    first = base.choices[0].logprobs.tokens[0]
    # logit_bias -100 bans the token greedy decoding chose first.
    banned = complete(c, "The capital of France is", max_tokens=8, logprobs=1, logit_bias={str(token_ids(first)[0]): -100})
    assert banned.choices[0].logprobs.tokens[0] != first, (first, banned.choices[0].text)
    # A frequency penalty breaks a greedy repetition; without it the same request repeats.
    plain = complete(c, "1, 1, 1, 1, 1, 1, 1, 1,", max_tokens=16).choices[0].text
    fresh = complete(c, "1, 1, 1, 1, 1, 1, 1, 1,", max_tokens=16, frequency_penalty=2).choices[0].text
    assert plain.count("1") > fresh.count("1"), (plain, fresh)
    the = complete(c, "the the the the the the", max_tokens=16).choices[0].text
    assert complete(c, "the the the the the the", max_tokens=16, presence_penalty=2).choices[0].text != the
    # llama-server's per-request fields: top_k 1 keeps only the best token whatever the temperature.
    hot = c.completions.create(model=MODEL, prompt="The capital of France is", max_tokens=8, temperature=1.5, seed=3, extra_body={"top_k": 1})
    assert hot.choices[0].text == base.choices[0].text
    # ignore_eos writes the whole budget; without it a short answer ends at end of text.
    short = chat(c, "Say hi.", max_tokens=60, temperature=0)
    assert short.choices[0].finish_reason == "stop" and short.usage.completion_tokens < 60
    long = chat(c, "Say hi.", max_tokens=60, temperature=0, extra_body={"ignore_eos": True})
    assert long.choices[0].finish_reason == "length" and long.usage.completion_tokens == 60
    # Greedy speculative writes what greedy large writes under the same penalties.
    pen = {"frequency_penalty": 1, "presence_penalty": 0.5}
    large = complete(c, "One, two, three,", max_tokens=24, **pen).choices[0].text
    spec = complete(c, "One, two, three,", max_tokens=24, extra_body={"relay_mode": "speculative:draft-vocab=0"}, **pen)
    assert spec.choices[0].text == large and relay_of(spec)["drafted"] > 0
    expect(400, lambda: chat(c, "Hi", response_format={"type": "json_object"}), code="unsupported_parameter", words=["response_format"])
    expect(400, lambda: chat(c, "Hi", tools=[{"type": "function", "function": {"name": "f"}}]), code="unsupported_parameter")
    expect(400, lambda: chat(c, "Hi", logit_bias={"999999": 1}), words=["logit_bias"])


def test_prompts_and_choices(s):
    c = s.client()
    alone = [complete(c, p, max_tokens=6).choices[0].text for p in ["The sky is", "Grass is"]]
    r = complete(c, ["The sky is", "Grass is"], n=2, max_tokens=6)
    assert [ch.index for ch in r.choices] == [0, 1, 2, 3]
    assert [ch.text for ch in r.choices] == [alone[0], alone[0], alone[1], alone[1]]
    assert r.usage.prompt_tokens == len(token_ids("The sky is")) + len(token_ids("Grass is"))
    assert all("relay" in (ch.model_extra or {}) for ch in r.choices)
    # Token ids are a prompt too, one array each.
    ids = complete(c, [token_ids("The sky is"), token_ids("Grass is")], max_tokens=6)
    assert [ch.text for ch in ids.choices] == alone
    # Streamed, the chunks of each choice add up to its text, and each choice ends once.
    texts, finals = {}, {}
    for ch in complete(c, ["The sky is", "Grass is"], max_tokens=6, stream=True, stream_options={"include_usage": True}):
        for choice in ch.choices:
            texts[choice.index] = texts.get(choice.index, "") + choice.text
            if choice.finish_reason:
                finals[choice.index] = relay_of(ch)
        usage = ch.usage
    assert texts == {0: alone[0], 1: alone[1]} and set(finals) == {0, 1}
    assert usage.prompt_tokens == ids.usage.prompt_tokens and usage.completion_tokens == ids.usage.completion_tokens


def test_unknown_fields_ignored(s):
    r = chat(s.client(), "Hi", max_tokens=4, temperature=0, extra_body={"frobnicate": {"x": [1, 2]}, "presence_penalty": 0})
    assert r.choices[0].message.content is not None


def test_malformed_json(s):
    r = raw(s, "/v1/chat/completions", b'{"model": "smollm2-135m", "messages": [')
    assert r.status_code == 400
    e = r.json()["error"]
    assert "malformed JSON" in e["message"] and e["type"] == "invalid_request_error" and "code" in e


def test_wrong_type(s):
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": "ten"})
    r = raw(s, "/v1/chat/completions", body.encode())
    assert r.status_code == 400
    assert "max_tokens" in r.json()["error"]["message"], r.text
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": 5}]})
    r = raw(s, "/v1/chat/completions", body.encode())
    assert r.status_code == 400 and "messages[0].content" in r.json()["error"]["message"], r.text


def expect(status, fn, code=None, words=()):
    try:
        fn()
    except openai.APIStatusError as e:
        assert e.status_code == status, (e.status_code, e.response.text)
        err = e.response.json()["error"]
        assert set(err) >= {"message", "type", "code"}, err
        if code:
            assert err["code"] == code, err
        for w in words:
            assert w in err["message"], err
        return err
    raise AssertionError(f"expected HTTP {status}")


def test_unknown_model(s):
    expect(404, lambda: s.client().chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "Hi"}]),
           code="model_not_found", words=["gpt-9"])


def test_context_overflow(s):
    expect(400, lambda: chat(s.client(), "word " * 600, max_tokens=4), code="context_length_exceeded")


def test_bad_values(s):
    c = s.client()
    expect(400, lambda: chat(c, "Hi", n=0), words=["n must be at least 1"])
    # -np 2 and --queue 2 hold four generations.
    expect(400, lambda: chat(c, "Hi", n=5), words=["5 choices", "at most 4"])
    expect(400, lambda: chat(c, "Hi", temperature=5), words=["temperature"])
    expect(400, lambda: chat(c, "Hi", extra_body={"relay_mode": "telepathy"}), code="invalid_mode", words=["telepathy"])
    expect(400, lambda: c.chat.completions.create(model=MODEL, messages=[]), words=["messages"])


def test_auth(s):
    expect(401, lambda: chat(s.client(key="wrong"), "Hi", max_tokens=2), code="invalid_api_key")
    assert http(s.base + "/health").json()["status"] == "ok"


def test_concurrent_clients(s):
    """Four clients at once over two slots: each gets exactly the answer it gets alone."""
    prompts = ["What is the sun?", "Name a fruit.", "What is 3 + 5?", "Say hello."]
    alone = {p: chat(s.client(), p, max_tokens=20, temperature=0).choices[0].message.content for p in prompts}
    results, errors = {}, []

    def run(p):
        try:
            results[p] = chat(s.client(), p, max_tokens=20, temperature=0).choices[0].message.content
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=run, args=(p,)) for p in prompts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert results == alone, (results, alone)


def busy_slots(s):
    return http(s.base + "/health").json()["slots_busy"]


def test_full_queue_and_disconnect(s):
    """Two slots busy, two requests queued: the next is refused with 429; closing the streams stops
    their generations (the slots come free long before 400 tokens). Greedy, on two prompts that
    SmolLM2 answers with at least 1,500 tokens: a sampled answer could end before the queue fills."""
    c = s.client()
    prompts = ["Tell a very long story number 0.", "Count from 1 to 5000, separated by commas."]
    streams = [chat(c, p, max_tokens=400, temperature=0, stream=True) for p in prompts]
    for st in streams:
        next(iter(st))  # both are generating
    queued = [threading.Thread(target=lambda: chat(c, "Hi", max_tokens=2, temperature=0)) for _ in range(2)]
    for q in queued:
        q.start()
    deadline = time.time() + 30
    while http(s.base + "/health").json()["queue_depth"] < 2 and time.time() < deadline:
        time.sleep(0.05)
    err = expect(429, lambda: chat(c, "Hi", max_tokens=2), code="queue_full")
    assert "busy" in err["message"]
    # Refused before its 5 MB prompt is read or tokenised (it would be a 400 for the context).
    expect(429, lambda: chat(c, "word " * 1_000_000, max_tokens=2), code="queue_full")
    before = metric(s, "relay_cancelled_total")
    for st in streams:
        st.close()
    for q in queued:
        q.join(timeout=120)
    deadline = time.time() + 30
    while busy_slots(s) > 0 and time.time() < deadline:
        time.sleep(0.1)
    assert busy_slots(s) == 0, "closed streams kept generating"
    assert metric(s, "relay_cancelled_total") >= before + 2


def metric(s, name):
    text = http(s.base + "/metrics").text
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert m, f"{name} missing from /metrics"
    return float(m.group(1))


def test_metrics(s):
    text = http(s.base + "/metrics").text
    assert re.search(r'^relay_requests_total\{endpoint="/v1/chat/completions",status="200"\} \d+', text, re.M), text
    assert re.search(r'^relay_requests_total\{endpoint="/v1/chat/completions",status="404"\} \d+', text, re.M)
    large = float(re.search(r'^relay_generated_tokens_total\{model="large"\} (\d+)', text, re.M).group(1))
    assert large > 0
    assert re.search(r'^relay_request_duration_seconds_bucket\{endpoint="/v1/completions",le="\+Inf"\} \d+', text, re.M)
    assert re.search(r"^relay_queue_depth 0(\.0)?$", text, re.M)


def test_playground(s):
    r = http(s.base + "/")
    assert r.status_code == 200 and "text/html" in r.headers["Content-Type"]
    assert "Relay playground" in r.text and "/v1/chat/completions" in r.text


def test_keep_alive(s):
    """200 requests, plain and streamed, over one kept-alive connection: every answer is the same
    greedy answer, and the server saw one connection for them. (The async client: the sync one
    closes a stream's connection at `[DONE]` instead of reading the body's end.)"""
    async def requests():
        async with openai.AsyncOpenAI(base_url=s.base + "/v1", api_key=KEY, max_retries=0, timeout=300) as c:
            async def complete(stream):
                if not stream:
                    r = await c.completions.create(model=MODEL, prompt="Hi", max_tokens=2, temperature=0)
                    assert r.usage.completion_tokens == 2, r
                    return r.choices[0].text
                chunks = [ch async for ch in await c.completions.create(model=MODEL, prompt="Hi", max_tokens=2, temperature=0, stream=True)]
                assert chunks[-1].choices[0].finish_reason == "length", chunks[-1]
                return "".join(ch.choices[0].text for ch in chunks if ch.choices)
            want = await complete(False)
            for i in range(200):
                text = await complete(i % 2 == 1)
                assert text == want, (i, text, want)

    before = metric(s, "relay_connections_total")
    asyncio.run(requests())
    # The client's one connection, and the one that reads the metric now.
    assert metric(s, "relay_connections_total") - before == 2, metric(s, "relay_connections_total") - before


def test_disconnect_stops_whole_answer(s):
    """A client that closes its connection while waiting for a (non-streamed) answer stops it."""
    before = metric(s, "relay_cancelled_total")
    sock = connect(s)
    send(sock, "POST", "/v1/chat/completions", chat_body("Count from 1 to 5000, separated by commas.", max_tokens=400))
    deadline = time.time() + 30
    while busy_slots(s) == 0 and time.time() < deadline:
        time.sleep(0.02)
    sock.close()
    deadline = time.time() + 30
    while busy_slots(s) > 0 and time.time() < deadline:
        time.sleep(0.05)
    assert busy_slots(s) == 0, "the generation went on"
    assert metric(s, "relay_cancelled_total") == before + 1


def test_content_type(s):
    """Only JSON bodies: a cross-site form post (text/plain, form-urlencoded) starts nothing."""
    body = json.dumps({"model": MODEL, "prompt": "Hi", "max_tokens": 2}).encode()
    for ctype in ["text/plain", "application/x-www-form-urlencoded", None]:
        sock = connect(s)
        send(sock, "POST", "/v1/completions", body, content_type=ctype)
        status, _, reply = read_reply(sock)
        sock.close()
        err = json.loads(reply)["error"]
        assert status == 415 and err["code"] == "unsupported_media_type", (ctype, status, reply)
        assert "application/json" in err["message"]


def test_body_too_large(s):
    """A body over the 16 MiB limit is a 413 in OpenAI's shape: decided from Content-Length before
    any of it is sent, through the openai client, and through urllib."""
    sock = connect(s)
    send(sock, "POST", "/v1/completions", b"", headers={"Content-Length": str(17 << 20)})
    status, _, reply = read_reply(sock)
    sock.close()
    err = json.loads(reply)["error"]
    assert status == 413 and err["code"] == "request_too_large" and err["type"] == "invalid_request_error", (status, reply)
    expect(413, lambda: s.client().completions.create(model=MODEL, prompt="a" * (17 << 20), max_tokens=2), code="request_too_large")
    # urllib asks to close the connection and sends the whole body before reading: the server
    # reads and drops the body after its answer, so the client gets the 413, not a reset.
    r = raw(s, "/v1/completions", b"x" * (17 << 20))
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large", (r.status_code, r.text)


def test_client_limits(s):
    c = s.client()
    expect(400, lambda: chat(c, "Hi", max_tokens=2, stop=[f"s{i}" for i in range(17)]), code="array_above_max_length", words=["stop"])
    expect(400, lambda: chat(c, "Hi", max_tokens=2, stop=["x" * 129]), code="string_above_max_length")
    assert chat(c, "Hi", max_tokens=2, stop=[f"s{i}" for i in range(16)]).choices[0].finish_reason == "length"
    # As OpenAI and vLLM answer: max_tokens that cannot fit, alone or after the prompt.
    expect(400, lambda: chat(c, "Hi", max_tokens=600), code="context_length_exceeded", words=["max_tokens"])
    expect(400, lambda: chat(c, "word " * 300, max_tokens=300), code="context_length_exceeded", words=["max_tokens"])
    many = [{"role": "user", "content": "x"}] * 2049
    expect(400, lambda: c.chat.completions.create(model=MODEL, messages=many, max_tokens=2), code="array_above_max_length", words=["messages"])


def test_cross_origin(s):
    """CORS headers only for the origins named with --allowed-origins."""
    def preflight(origin):
        sock = connect(s)
        send(sock, "OPTIONS", "/v1/chat/completions", headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                                                 "Access-Control-Request-Headers": "authorization, content-type"})
        reply = read_reply(sock)
        sock.close()
        return reply
    status, headers, _ = preflight("http://good.example")
    assert status == 204 and headers.get("access-control-allow-origin") == "http://good.example", (status, headers)
    assert "authorization" in headers.get("access-control-allow-headers", "").lower()
    status, headers, _ = preflight("http://evil.example")
    assert "access-control-allow-origin" not in headers, headers
    for origin, allowed in [("http://good.example", True), ("http://evil.example", False)]:
        sock = connect(s)
        send(sock, "GET", "/v1/models", headers={"Origin": origin})
        status, headers, _ = read_reply(sock)
        sock.close()
        assert status == 200 and (headers.get("access-control-allow-origin") == origin) == allowed, (origin, headers)


# ---------------------------------------------------------------- raw sockets


def connect(s):
    return socket.create_connection(("127.0.0.1", s.port), timeout=30)


def chat_body(content, **kw):
    return json.dumps({"model": MODEL, "messages": [{"role": "user", "content": content}], "temperature": 0, **kw}).encode()


def send(sock, method, path, body=b"", content_type="application/json", headers=None):
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {KEY}"]
    if content_type and method == "POST":
        lines.append(f"Content-Type: {content_type}")
    extra = dict(headers or {})
    if body and "Content-Length" not in extra:
        extra["Content-Length"] = str(len(body))
    lines += [f"{k}: {v}" for k, v in extra.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)


def read_reply(sock):
    """Status, headers (lower-case names) and body of one reply with a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a reply: {data!r}")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    n = int(headers.get("content-length", 0))
    while len(rest) < n:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return int(lines[0].split()[1]), headers, rest[:n]


def seconds_until_closed(sock, limit, trickle=None):
    """Seconds until the server closes the connection, sending `trickle` every 0.2 s meanwhile;
    None if it is still open after `limit`."""
    t0 = time.time()
    while time.time() - t0 < limit:
        try:
            if trickle:
                sock.sendall(trickle)
            if select.select([sock], [], [], 0.2)[0] and not sock.recv(65536):
                return time.time() - t0
        except (BrokenPipeError, ConnectionResetError):
            return time.time() - t0
    return None


# These run on a second server: --timeout-idle 3 --timeout-headers 2 --timeout-body 2
# --max-connections 4 --max-body-mib 1.

def test_idle_timeout(s):
    sock = connect(s)
    send(sock, "GET", "/health")
    assert read_reply(sock)[0] == 200
    t = seconds_until_closed(sock, 8)
    sock.close()
    assert t is not None and 2.5 < t < 6, f"idle connection closed after {t} s (--timeout-idle 3)"


def test_header_timeout(s):
    """A header sent a line every 0.2 s is cut at the header deadline, however it trickles."""
    sock = connect(s)
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\n")
    t = seconds_until_closed(sock, 8, trickle=b"X-Slow: 1\r\n")
    sock.close()
    assert t is not None and 1.5 < t < 6, f"trickled header closed after {t} s (--timeout-headers 2)"


def test_body_timeout(s):
    sock = connect(s)
    send(sock, "POST", "/v1/completions", b'{"prompt": ', headers={"Content-Length": "100"})
    t = seconds_until_closed(sock, 8)
    sock.close()
    assert t is not None and 1.5 < t < 6, f"half a body closed after {t} s (--timeout-body 2)"


def test_chunked_body_too_large(s):
    """A chunked body is cut at the limit (--max-body-mib 1) while it is read: 413, not 500."""
    sock = connect(s)
    send(sock, "POST", "/v1/completions", headers={"Transfer-Encoding": "chunked"})
    piece = b"a" * (256 << 10)
    for _ in range(8):
        sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
    sock.sendall(b"0\r\n\r\n")
    status, _, reply = read_reply(sock)
    sock.close()
    assert status == 413 and json.loads(reply)["error"]["code"] == "request_too_large", (status, reply)


def test_connection_cap(s):
    """With 4 connections open, a fifth is closed at once; the four still get their answers."""
    refused = metric(s, "relay_connections_refused_total")
    deadline = time.time() + 5
    while metric(s, "relay_connections_open") > 1 and time.time() < deadline:  # the one that asks
        time.sleep(0.1)
    time.sleep(0.2)  # and that one closes too
    held = [connect(s) for _ in range(4)]
    for sock in held:
        sock.sendall(b"GET /health HTTP/1.1\r\n")
    fifth = connect(s)
    t = seconds_until_closed(fifth, 1)
    fifth.close()
    assert t is not None and t < 0.5, f"the fifth connection was not closed at once ({t})"
    for sock in held:
        sock.sendall(b"Host: x\r\n\r\n")
        assert read_reply(sock)[0] == 200
        sock.close()
    time.sleep(0.2)
    assert metric(s, "relay_connections_refused_total") == refused + 1


def test_empty_key_refused(relay):
    r = subprocess.run([relay, "serve", "-m", MODEL, "--port", "0"], env=dict(os.environ, RELAY_API_KEY=""),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "API key is empty" in r.stderr, (r.returncode, r.stderr[-500:])


TESTS = [test_models, test_chat, test_completion_length, test_completion_stop, test_stream_matches_whole,
         test_stream_completion_without_usage, test_seed_repeats, test_speculative_mode, test_relaygen_mode, test_small_mode,
         test_logprobs, test_sampling_parameters, test_prompts_and_choices, test_unknown_fields_ignored, test_malformed_json, test_wrong_type, test_unknown_model, test_context_overflow,
         test_bad_values, test_auth, test_concurrent_clients, test_full_queue_and_disconnect, test_metrics, test_playground,
         test_keep_alive, test_disconnect_stops_whole_answer, test_content_type, test_body_too_large, test_client_limits,
         test_cross_origin]
LIMIT_TESTS = [test_idle_timeout, test_header_timeout, test_body_timeout, test_chunked_body_too_large, test_connection_cap]


def run(tests, server, only):
    failed = 0
    for test in tests:
        if only and test.__name__ not in only:
            continue
        t0 = time.time()
        try:
            test(server)
            print(f"ok    {test.__name__} ({time.time() - t0:.1f} s)")
        except Exception:  # noqa: BLE001 - every failure is printed
            failed += 1
            print(f"FAIL  {test.__name__} ({time.time() - t0:.1f} s)")
            traceback.print_exc()
    return failed


def stopped(server):
    code = server.stop()
    last = "".join(server.log[-3:])
    if code != 0 or "stopped" not in last:
        print(f"FAIL  graceful shutdown on SIGTERM: exit code {code}\n{last}")
        print("server log:\n" + "".join(server.log[-40:]))
        return 1
    print("ok    graceful shutdown on SIGTERM")
    return 0


def test_openapi_conformance(relay):
    """schemathesis against the served document, bounded: a fixed seed, at most 10 generated cases
    per operation in the fuzzing phase besides the coverage phase's boundary cases (some 800
    requests, ~15 s here), 300 s at most; checks that no answer is a 5xx and that every status,
    content type and body matches the document (a stream's events only as events: `data` lines)."""
    server = Server(relay, "-m", MODEL, "-c", "64", "-np", "2", "--queue", "2", "--temp", "0")
    try:
        doc = http(server.base + "/openapi.json").json()
        assert doc["components"]["schemas"]["Sampling"]["properties"]["max_tokens"]["maximum"] == 63
        run = subprocess.run([sys.executable, "-m", "schemathesis.cli", "run", server.base + "/openapi.json", "--seed", "1",
                              "--max-examples", "10", "--workers", "1", "--request-timeout", "60", "--checks",
                              "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"],
                             capture_output=True, text=True, timeout=300, cwd=tempfile.gettempdir())  # its cache stays out of the tree
        tail = "\n".join(run.stdout.splitlines()[-25:])
        assert run.returncode == 0, tail + run.stderr[-2000:]
        m = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
        assert m and m.group(1) == m.group(2), tail
        print(f"      schemathesis: {m.group(1)} generated, {m.group(2)} passed")
    finally:
        server.stop()


def main():
    global RELAY
    relay = RELAY = sys.argv[1]
    only = sys.argv[2:]
    with tempfile.TemporaryDirectory() as tmp:
        cues = os.path.join(tmp, "cues.json")
        with open(cues, "w") as f:
            json.dump({"model": MODEL, "cues": [{"text": t, "delta": 0.1, "count": 1} for t in ["So", "First", "Then", "Now", "We"]]}, f)
        env = dict(os.environ, RELAY_API_KEY=KEY)
        started = time.time()
        server = Server(relay, "-m", MODEL, "-md", MODEL, "--cues", cues, "-np", "2", "--queue", "2", "-c", "512", "--temp", "0",
                        "--allowed-origins", "http://good.example", env=env)
        print(f"relay serve on port {server.port} ({time.time() - started:.1f} s to start)")
        failed = run(TESTS, server, only)
        failed += stopped(server)
        if not only or any(t.__name__ in only for t in LIMIT_TESTS):
            # Small limits, so that the tests of the deadlines take seconds.
            server = Server(relay, "-m", MODEL, "-c", "256", "--timeout-idle", "3", "--timeout-headers", "2", "--timeout-body", "2",
                            "--max-connections", "4", "--max-body-mib", "1", env=env)
            failed += run(LIMIT_TESTS, server, only)
            failed += stopped(server)
        failed += run([test_empty_key_refused, test_openapi_conformance], relay, only)
        print(f"{failed} failed, {time.time() - started:.1f} s")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
