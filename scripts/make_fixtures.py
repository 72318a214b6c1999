#!/usr/bin/env python3
"""Writes the reference fixtures in Tests/Fixtures/ from llama.cpp, the correctness oracle.

    python3 scripts/make_fixtures.py [--bin DIR] [--out DIR] [--only NAME ...] [--skip-greedy] [--skip-tokenizer]

Needs the llama.cpp binaries (llama-tokenize, llama-server). This script never builds them: pass
--bin, set LLAMA_CPP_BIN, or build them once with ../shared/tools/llama-cpp (default folder
~/.cache/relay-ref/llama.cpp/build/bin). Needs the models in $RELAY_HOME/models (default
~/.cache/relay): `relay models fetch --all`. The tiny random models are (re)generated into
$RELAY_HOME/test by scripts/make_tiny_gguf.py, deterministically.

Fixtures:
- tokenizer-<model>.json: `llama-tokenize -m M --stdin --ids --no-bos --no-escape` (special tokens
  in the text are parsed) on a varied corpus, for the three real models and tiny-llama3 (llama-bpe).
- greedy-<model>.json: for 4 raw-text prompts, the prompt's token ids (BOS per metadata), the first
  64 greedily generated ids (fewer if the model ends the text) and at each step the top-5
  candidates with their probabilities: softmax of the raw logits over the full vocabulary
  (llama-server /completion with n_probs 5 and post_sampling_probs false; one full greedy run for
  the ids, then one request per step, with the prompt cache, for the probabilities, because the
  server leaves out the probabilities of tokens that end in an incomplete UTF-8 sequence).
"""

import argparse
import hashlib
import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_tiny_gguf  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELAY_HOME = os.environ.get("RELAY_HOME") or os.path.expanduser("~/.cache/relay")

# Keep in sync with Sources/Assets/Registry.swift.
MODELS = {
    "smollm2-135m": ("SmolLM2-135M-Instruct.Q4_1.gguf",
                     "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),
    "qwen2.5-coder-0.5b": ("Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf",
                           "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"),
    "qwen2.5-coder-1.5b": ("Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.gguf",
                           "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"),
}
TINY = ["tiny-qwen3", "tiny-llama3"]
TOKENIZER_MODELS = list(MODELS) + ["tiny-llama3"]
GREEDY_MODELS = list(MODELS) + TINY

CORPUS = [
    "Hello world",
    "Hello, world! How are you today?",
    " leading space",
    "trailing spaces   ",
    "multiple   spaces\tand\ttabs",
    "\n\n\n",
    "line one\nline two\r\nline three\n",
    "I'm don't WE'LL they've she'd You're it's",
    "The quick brown fox jumps over the lazy dog.",
    "1234567 3.14159 -42 1,000,000 0x1F 2024-06-11 007",
    "12345678901234567890",
    "def add(a, b):\n    return a + b\n\n\nclass Foo:\n\tdef bar(self):\n\t\tpass\n",
    "for (int i = 0; i < n; ++i) {\n        sum += a[i] * b[i];\n}\n",
    "    indented four\n        indented eight\n\t\ttwo tabs",
    "{\"key\": [1, 2, 3], \"nested\": {\"a\": null, \"b\": true}}",
    "Café naïve résumé façade Ångström Øresund",
    "e\u0301 a\u0308 n\u0303 combining marks: Zalgo Z\u0351\u0352o\u0353",
    "你好，世界！这是一个测试。",
    "こんにちは世界、カタカナとひらがな",
    "안녕하세요 세계",
    "مرحبا بالعالم، كيف حالك؟",
    "Привет, мир! Съешь же ещё этих мягких французских булок.",
    "नमस्ते दुनिया",
    "I love 🍕 and 🎉!",
    "👨\u200d👩\u200d👧\u200d👦 family, 🧑🏽\u200d💻 coder, 👍🏿",
    "🇫🇷🇯🇵🇺🇸 flags",
    "$\\frac{a}{b} + \\sqrt{x^2 + y^2}$ so the answer is \\boxed{42}.",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>",
    "text before<|endoftext|>text after",
    "abc<|im_end|>def",
    "Mixed 中文 and English with números 123 y acentos",
    "   ",
    "",
    "Supercalifragilisticexpialidocious antidisestablishmentarianism",
    "!!! ??? ... --- *** /// ((())) [[]]",
    "\t\t\tTabbed line\n \n  \n",
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May.",
    "# Title\n\n- item 1\n- item 2\n\n```swift\nlet x = 1\n```\n",
    "ǅ ﬁ ẞ İ non\u00a0breaking zero\u200bwidth",
]

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
    "<|im_start|>user\nWrite a short poem about the sea.<|im_end|>\n<|im_start|>assistant\n",
    "Question: Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
    "in May. How many clips did Natalia sell altogether in April and May?\nAnswer: Let's think step by step.",
]

N_PREDICT = 64
N_PROBS = 5


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def find_bin(arg):
    candidates = [arg, os.environ.get("LLAMA_CPP_BIN"),
                  os.path.expanduser("~/.cache/relay-ref/llama.cpp/build/bin")]
    for d in candidates:
        if d and os.path.exists(os.path.join(d, "llama-server")) and os.path.exists(os.path.join(d, "llama-tokenize")):
            return os.path.abspath(d)
    sys.exit("error: llama.cpp binaries not found: pass --bin DIR or set LLAMA_CPP_BIN "
             "(build them once with ../shared/tools/llama-cpp)")


def llama_version(bindir):
    out = subprocess.run([os.path.join(bindir, "llama-server"), "--version"],
                         capture_output=True, text=True)
    lines = [l.strip() for l in (out.stdout + out.stderr).splitlines() if l.strip().startswith(("version", "built"))]
    return {
        "source": "llama.cpp vendored in the llama-cpp-python==0.3.36 sdist (commit not recorded by the sdist)",
        "version": "; ".join(lines),
    }


def model_entries(tiny_info):
    """name -> (path, sha256)"""
    models = {}
    for name, (file_name, digest) in MODELS.items():
        models[name] = (os.path.join(RELAY_HOME, "models", file_name), digest)
    models.update(tiny_info)
    return models


# ---------------------------------------------------------------------------------------------
# JSON output: readable, with lists of numbers kept on one line.

def dump(obj, indent=0):
    pad = " " * indent
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f'{pad} {json.dumps(k)}: {dump(v, indent + 1)}' for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list):
        if all(not isinstance(x, (dict, list)) for x in obj):
            return "[" + ", ".join(json.dumps(x, ensure_ascii=False) for x in obj) + "]"
        items = [f"{pad} {dump(x, indent + 1)}" for x in obj]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(obj, ensure_ascii=False)


def write_fixture(outdir, name, obj):
    path = os.path.join(outdir, name)
    text = dump(obj) + "\n"
    json.loads(text)  # well-formed
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {os.path.relpath(path, ROOT)} ({len(text.encode())} bytes)", file=sys.stderr)


def gguf_meta(path):
    import gguf
    r = gguf.GGUFReader(path)

    def get(key, default=None):
        f = r.fields.get(key)
        return f.contents() if f is not None else default

    return {
        "architecture": get("general.architecture"),
        "tokenizer_pre": get("tokenizer.ggml.pre"),
        "add_bos_token": bool(get("tokenizer.ggml.add_bos_token", False)),
        "bos_token_id": get("tokenizer.ggml.bos_token_id"),
        "eos_token_id": get("tokenizer.ggml.eos_token_id"),
        "n_vocab": len(r.fields["tokenizer.ggml.tokens"].data),
    }


# ---------------------------------------------------------------------------------------------
# Tokenizer fixtures

def tokenize_fixture(bindir, name, path, digest, version):
    exe = os.path.join(bindir, "llama-tokenize")
    cmd = [exe, "-m", path, "--stdin", "--ids", "--no-bos", "--no-escape", "--log-disable"]
    cases = []
    for text in CORPUS:
        out = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True)
        if out.returncode != 0:
            sys.exit(f"error: llama-tokenize failed on {text!r}: {out.stderr.decode()[-500:]}")
        ids = json.loads(out.stdout.decode().strip().splitlines()[-1])
        cases.append({"text": text, "ids": ids})
    meta = gguf_meta(path)
    return {
        "model": name,
        "model_file": os.path.basename(path),
        "model_sha256": digest,
        "tokenizer_pre": meta["tokenizer_pre"],
        "add_bos_token": meta["add_bos_token"],
        "bos_added": False,
        "parse_special": True,
        "llama_cpp": version,
        "command": "llama-tokenize -m MODEL --stdin --ids --no-bos --no-escape --log-disable < TEXT",
        "cases": cases,
    }


# ---------------------------------------------------------------------------------------------
# Greedy fixtures

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(port, route, body, timeout=600):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{route}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


class Server:
    def __init__(self, bindir, model_path):
        self.port = free_port()
        self.args = ["-m", model_path, "--host", "127.0.0.1", "--port", str(self.port), "-t", "2",
                     "-c", "2048", "-np", "1", "--no-webui"]
        self.log = open(os.path.join(RELAY_HOME, "llama-server-fixtures.log"), "w")
        self.proc = subprocess.Popen([os.path.join(bindir, "llama-server")] + self.args,
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def command(self):
        return "llama-server " + " ".join("MODEL" if i > 0 and self.args[i - 1] == "-m" else
                                          ("PORT" if i > 0 and self.args[i - 1] == "--port" else a)
                                          for i, a in enumerate(self.args))

    def wait(self):
        deadline = time.time() + 300
        while time.time() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"error: llama-server exited with {self.proc.returncode}; "
                         f"see {self.log.name}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=5) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.5)
        self.stop()
        sys.exit("error: llama-server did not become healthy in 300 s")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def sig(x, digits=6):
    return float(f"{x:.{digits}g}")


REQUEST = {
    "n_predict": N_PREDICT,
    "n_probs": N_PROBS,
    "post_sampling_probs": False,   # probabilities = softmax of the raw logits over the full vocabulary
    "samplers": ["top_k"],          # greedy: keep only the most likely token ...
    "top_k": 1,
    "temperature": 0,               # ... and temperature <= 0 is argmax too
    "cache_prompt": False,
    "return_tokens": True,
    "seed": 0,
}


def step_probs(port, prefix, expected, cache):
    """Top-N raw probabilities for the next token after `prefix` (one-token request).

    llama-server leaves out the probabilities of a token whose text ends in an incomplete UTF-8
    sequence (a byte-fallback token). Then the request is repeated with that token banned by
    logit_bias: the sampled token changes, but the reported probabilities are those of the raw
    logits, so they are the same and the banned token is still their top-1."""
    banned = []
    for _ in range(16):
        body = dict(REQUEST, prompt=prefix, n_predict=1, cache_prompt=cache or bool(banned))
        if banned:
            body["logit_bias"] = [[t, False] for t in banned]
        res = post(port, "/completion", body)
        tok = res["tokens"][0] if res["tokens"] else None
        if not banned and tok != expected:
            sys.exit(f"error: step-by-step decoding gave {tok}, the full run {expected}")
        probs = res.get("completion_probabilities") or []
        if probs:
            cands = probs[0]["top_logprobs"]
            if cands[0]["id"] != expected:
                sys.exit(f"error: top-1 {cands[0]['id']} is not the greedy token {expected}")
            return [c["id"] for c in cands], [sig(math.exp(c["logprob"])) for c in cands]
        if tok is None:
            break
        banned.append(tok)
    sys.exit(f"error: no probabilities for the step after {len(prefix)} tokens")


def greedy_fixture(bindir, name, path, digest, version, extra=None):
    meta = gguf_meta(path)
    server = Server(bindir, path)
    try:
        server.wait()
        cases = []
        for prompt in PROMPTS:
            prompt_ids = post(server.port, "/tokenize",
                              {"content": prompt, "add_special": True, "parse_special": True})["tokens"]
            # One full greedy run gives the ids (prompt as one batch, then one token at a time) ...
            res = post(server.port, "/completion", dict(REQUEST, prompt=prompt_ids))
            ids = res["tokens"]
            assert res.get("tokens_evaluated", len(prompt_ids)) == len(prompt_ids), res.get("tokens_evaluated")
            # ... and one request per step the top-5 of each step: the first step evaluates the
            # prompt as one batch, later ones reuse the cache and decode just the newest token, as
            # the full run did, so the numbers are the same.
            top_ids, top_probs = [], []
            for i, tok in enumerate(ids):
                cand_ids, cand_probs = step_probs(server.port, prompt_ids + ids[:i], tok, cache=i > 0)
                top_ids.append(cand_ids)
                top_probs.append(cand_probs)
            # Cross-check with the probabilities the full run reported (it leaves out some steps).
            full = [(p["id"], [c["id"] for c in p["top_logprobs"]], [math.exp(c["logprob"]) for c in p["top_logprobs"]])
                    for p in res.get("completion_probabilities") or []]
            j = 0
            for i, tok in enumerate(ids):
                if (j < len(full) and full[j][0] == tok and full[j][1] == top_ids[i]
                        and all(abs(a - b) < 1e-4 for a, b in zip(full[j][2], top_probs[i]))):
                    j += 1
            if j != len(full):
                sys.exit(f"error: {name}: step-by-step top-5 disagrees with the full run's")
            cases.append({
                "prompt": prompt,
                "prompt_ids": prompt_ids,
                "ids": ids,
                "text": res["content"],
                "stop_type": res.get("stop_type"),
                "top_ids": top_ids,
                "top_probs": top_probs,
            })
            print(f"  {name}: {len(prompt_ids)} prompt tokens, {len(ids)} generated ({res.get('stop_type')})",
                  file=sys.stderr)
    finally:
        server.stop()
    fixture = {
        "model": name,
        "model_file": os.path.basename(path),
        "model_sha256": digest,
        "architecture": meta["architecture"],
        "add_bos_token": meta["add_bos_token"],
        "bos_token_id": meta["bos_token_id"],
        "eos_token_id": meta["eos_token_id"],
        "n_vocab": meta["n_vocab"],
        "llama_cpp": version,
        "command": server.command(),
        "request": dict(REQUEST, prompt="<prompt_ids>"),
        "notes": "prompt_ids from /tokenize with add_special and parse_special (BOS only if the model's "
                 "metadata adds one); ids = greedy continuation from one /completion request (stops early "
                 "at end of generation); top_ids/top_probs from one n_predict=1 request per step with "
                 "cache_prompt=true; "
                 "top_ids/top_probs[i] = the 5 most likely tokens and their softmax probabilities (raw logits, "
                 "full vocabulary) at the step that produced ids[i]; probabilities rounded to 6 significant digits.",
        "cases": cases,
    }
    if extra:
        fixture.update(extra)
    return fixture


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", help="folder with llama-tokenize and llama-server")
    ap.add_argument("--out", default=os.path.join(ROOT, "Tests", "Fixtures"))
    ap.add_argument("--only", nargs="*", help="model names to do (default: all)")
    ap.add_argument("--skip-tokenizer", action="store_true")
    ap.add_argument("--skip-greedy", action="store_true")
    args = ap.parse_args()

    bindir = find_bin(args.bin)
    version = llama_version(bindir)
    os.makedirs(args.out, exist_ok=True)

    # The tiny models, twice: the bytes must not depend on the run.
    testdir = os.path.join(RELAY_HOME, "test")
    tiny = make_tiny_gguf.make_all(testdir)
    again = make_tiny_gguf.make_all(testdir + "/.again")
    for name in tiny:
        if tiny[name][1] != again[name][1]:
            sys.exit(f"error: {name}.gguf differs between two runs: {tiny[name][1]} vs {again[name][1]}")
    for name in again:
        os.remove(again[name][0])
    os.rmdir(testdir + "/.again")
    tiny_extra = {
        "generator": "python3 scripts/make_tiny_gguf.py $RELAY_HOME/test (deterministic; two runs compared)",
    }

    models = model_entries(tiny)
    wanted = set(args.only) if args.only else None
    for name, (path, digest) in models.items():
        if wanted is not None and name not in wanted:
            continue
        if not os.path.exists(path):
            sys.exit(f"error: {path} not found: run `relay models fetch {name}`")
        if name in MODELS:
            actual = sha256(path)
            if actual != digest:
                sys.exit(f"error: {name}: sha256 {actual}, expected {digest}")
        extra = tiny_extra if name in TINY else None
        if not args.skip_tokenizer and name in TOKENIZER_MODELS:
            fx = tokenize_fixture(bindir, name, path, digest, version)
            if extra:
                fx.update(extra)
            write_fixture(args.out, f"tokenizer-{name}.json", fx)
        if not args.skip_greedy and name in GREEDY_MODELS:
            write_fixture(args.out, f"greedy-{name}.json", greedy_fixture(bindir, name, path, digest, version, extra))


if __name__ == "__main__":
    main()
