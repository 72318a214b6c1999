#!/usr/bin/env python3
"""Writes two tiny random GGUF models for cases no shipped model covers.

    python3 scripts/make_tiny_gguf.py OUTDIR [--vocab-from SMOLLM2.gguf] [--check FIXTURES_DIR]

- tiny-qwen3.gguf:  arch `qwen3` (per-layer attn_q_norm/attn_k_norm, NeoX RoPE, no QKV bias,
  head_dim 32 != n_embd / n_head), tied output (no output.weight), ChatML template, no BOS.
- tiny-llama3.gguf: arch `llama`, tokenizer pre `llama-bpe` (adds BOS), separate output.weight,
  llama3-style RoPE scaling as a `rope_freqs.weight` tensor, llama3 chat template, BOS
  <|endoftext|> (id 0).

Both borrow the real vocabulary, merges and token types of SmolLM2-135M so the tokenizer is real.
Weights are F32, except token_embd (F16) and blk.1.ffn_down (Q8_0). The output is deterministic
(legacy numpy RandomState, fixed seeds): two runs give byte-identical files. The sha256 of each file
is printed; the fixtures record them (`model_sha256` in Tests/Fixtures/greedy-tiny-*.json), and
--check fails if the files written differ from those (e.g. after a change of the gguf package).
"""

import argparse
import hashlib
import json
import math
import os
import sys

import numpy as np
import gguf

SEED = 20240611
N_EMBD = 64
N_LAYER = 2
N_HEAD = 4
N_HEAD_KV = 2
N_FF = 128
CTX = 2048

CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
          "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
LLAMA3 = ("{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
          "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + "
          "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
          "{{ content }}{% endfor %}{% if add_generation_prompt %}"
          "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}")


def default_vocab_source():
    home = os.environ.get("RELAY_HOME") or os.path.expanduser("~/.cache/relay")
    return os.path.join(home, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")


def read_vocab(path):
    r = gguf.GGUFReader(path)

    def get(key):
        return r.fields[key].contents()

    return {
        "tokens": get("tokenizer.ggml.tokens"),
        "types": [int(t) for t in get("tokenizer.ggml.token_type")],
        "merges": get("tokenizer.ggml.merges"),
    }


def add_vocab(w, vocab, pre, add_bos, bos):
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(vocab["tokens"])
    w.add_token_types(vocab["types"])
    w.add_token_merges(vocab["merges"])
    w.add_bos_token_id(bos)
    w.add_eos_token_id(2)   # <|im_end|>
    w.add_unk_token_id(0)   # <|endoftext|>
    w.add_pad_token_id(2)
    w.add_add_bos_token(add_bos)


def normal(rng, shape, std):
    return (rng.standard_normal(size=shape) * std).astype(np.float32)


def norm_weight(rng, n):
    return (1.0 + 0.1 * rng.standard_normal(size=(n,))).astype(np.float32)


def linear(rng, n_out, n_in, gain=1.0):
    # numpy shape (rows=n_out, cols=n_in) is GGUF shape [n_in, n_out]
    return normal(rng, (n_out, n_in), gain / math.sqrt(n_in))


# Gain of the projections that write into the residual stream (attn_output, ffn_down): large enough
# that the layers, not the token's own embedding, decide the next token (with a tied output the
# model would otherwise just repeat its input).
OUT_GAIN = 4.0


def add_q8_0(w, name, arr):
    q = gguf.quants.quantize(arr, gguf.GGMLQuantizationType.Q8_0)
    w.add_tensor(name, q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)


def write(path, arch, fill):
    w = gguf.GGUFWriter(path, arch)
    fill(w)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def tiny_qwen3(path, vocab):
    head_dim = 32  # deliberately != N_EMBD / N_HEAD (16), like real Qwen3 models
    n_vocab = len(vocab["tokens"])
    rng = np.random.RandomState(SEED)

    def fill(w):
        w.add_name("tiny-qwen3")
        w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
        w.add_vocab_size(n_vocab)
        w.add_context_length(CTX)
        w.add_embedding_length(N_EMBD)
        w.add_block_count(N_LAYER)
        w.add_feed_forward_length(N_FF)
        w.add_head_count(N_HEAD)
        w.add_head_count_kv(N_HEAD_KV)
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
        w.add_rope_freq_base(1_000_000.0)
        w.add_layer_norm_rms_eps(1e-6)
        add_vocab(w, vocab, "qwen2", add_bos=False, bos=1)  # <|im_start|>, as in SmolLM2
        w.add_chat_template(CHATML)

        w.add_tensor("token_embd.weight", normal(rng, (n_vocab, N_EMBD), 1.0).astype(np.float16))
        w.add_tensor("output_norm.weight", norm_weight(rng, N_EMBD))
        for i in range(N_LAYER):
            p = f"blk.{i}."
            w.add_tensor(p + "attn_norm.weight", norm_weight(rng, N_EMBD))
            w.add_tensor(p + "attn_q.weight", linear(rng, N_HEAD * head_dim, N_EMBD))
            w.add_tensor(p + "attn_k.weight", linear(rng, N_HEAD_KV * head_dim, N_EMBD))
            w.add_tensor(p + "attn_v.weight", linear(rng, N_HEAD_KV * head_dim, N_EMBD))
            w.add_tensor(p + "attn_q_norm.weight", norm_weight(rng, head_dim))
            w.add_tensor(p + "attn_k_norm.weight", norm_weight(rng, head_dim))
            w.add_tensor(p + "attn_output.weight", linear(rng, N_EMBD, N_HEAD * head_dim, OUT_GAIN))
            w.add_tensor(p + "ffn_norm.weight", norm_weight(rng, N_EMBD))
            w.add_tensor(p + "ffn_gate.weight", linear(rng, N_FF, N_EMBD))
            w.add_tensor(p + "ffn_up.weight", linear(rng, N_FF, N_EMBD))
            down = linear(rng, N_EMBD, N_FF, OUT_GAIN)
            if i == 1:
                add_q8_0(w, p + "ffn_down.weight", down)
            else:
                w.add_tensor(p + "ffn_down.weight", down)

    write(path, "qwen3", fill)


def llama3_rope_factors(head_dim, base, factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                        original_ctx=64):
    """The `rope_freqs` factors convert_hf_to_gguf.py writes for rope_scaling type llama3.
    original_ctx is tiny (64, not 8192) so that the scaling matters within a short test."""
    freqs = 1.0 / (base ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    low_freq_wavelen = original_ctx / low_freq_factor
    high_freq_wavelen = original_ctx / high_freq_factor
    factors = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_freq_wavelen:
            factors.append(1.0)
        elif wavelen > low_freq_wavelen:
            factors.append(factor)
        else:
            smooth = (original_ctx / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
            factors.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.array(factors, dtype=np.float32)


def tiny_llama3(path, vocab):
    head_dim = N_EMBD // N_HEAD
    base = 500_000.0
    n_vocab = len(vocab["tokens"])
    rng = np.random.RandomState(SEED + 1)

    def fill(w):
        w.add_name("tiny-llama3")
        w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
        w.add_vocab_size(n_vocab)
        w.add_context_length(CTX)
        w.add_embedding_length(N_EMBD)
        w.add_block_count(N_LAYER)
        w.add_feed_forward_length(N_FF)
        w.add_head_count(N_HEAD)
        w.add_head_count_kv(N_HEAD_KV)
        w.add_rope_dimension_count(head_dim)
        w.add_rope_freq_base(base)
        w.add_layer_norm_rms_eps(1e-5)
        add_vocab(w, vocab, "llama-bpe", add_bos=True, bos=0)  # <|endoftext|>: not a chat token
        w.add_chat_template(LLAMA3)

        w.add_tensor("token_embd.weight", normal(rng, (n_vocab, N_EMBD), 1.0).astype(np.float16))
        w.add_tensor("output_norm.weight", norm_weight(rng, N_EMBD))
        w.add_tensor("output.weight", normal(rng, (n_vocab, N_EMBD), 1.0))
        w.add_tensor("rope_freqs.weight", llama3_rope_factors(head_dim, base))
        for i in range(N_LAYER):
            p = f"blk.{i}."
            w.add_tensor(p + "attn_norm.weight", norm_weight(rng, N_EMBD))
            w.add_tensor(p + "attn_q.weight", linear(rng, N_HEAD * head_dim, N_EMBD))
            w.add_tensor(p + "attn_k.weight", linear(rng, N_HEAD_KV * head_dim, N_EMBD))
            w.add_tensor(p + "attn_v.weight", linear(rng, N_HEAD_KV * head_dim, N_EMBD))
            w.add_tensor(p + "attn_output.weight", linear(rng, N_EMBD, N_HEAD * head_dim, OUT_GAIN))
            w.add_tensor(p + "ffn_norm.weight", norm_weight(rng, N_EMBD))
            w.add_tensor(p + "ffn_gate.weight", linear(rng, N_FF, N_EMBD))
            w.add_tensor(p + "ffn_up.weight", linear(rng, N_FF, N_EMBD))
            down = linear(rng, N_EMBD, N_FF, OUT_GAIN)
            if i == 1:
                add_q8_0(w, p + "ffn_down.weight", down)
            else:
                w.add_tensor(p + "ffn_down.weight", down)

    write(path, "llama", fill)


MODELS = {"tiny-qwen3": tiny_qwen3, "tiny-llama3": tiny_llama3}


def package_version(name):
    try:
        from importlib.metadata import version
        return version(name)
    except Exception:
        return "?"


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def make_all(outdir, vocab_from=None):
    """Writes every tiny model into outdir; returns {name: (path, sha256)}."""
    vocab_from = vocab_from or default_vocab_source()
    if not os.path.exists(vocab_from):
        sys.exit(f"error: {vocab_from} not found: run `relay models fetch smollm2-135m` first")
    vocab = read_vocab(vocab_from)
    os.makedirs(outdir, exist_ok=True)
    result = {}
    for name, make in MODELS.items():
        path = os.path.join(outdir, name + ".gguf")
        tmp = path + ".partial"
        make(tmp, vocab)
        os.replace(tmp, path)
        result[name] = (path, sha256(path))
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("--vocab-from", help="GGUF to borrow the tokenizer from (default: SmolLM2 in $RELAY_HOME)")
    ap.add_argument("--check", metavar="FIXTURES_DIR",
                    help="fail unless each file's sha256 equals model_sha256 in FIXTURES_DIR/greedy-NAME.json")
    args = ap.parse_args()
    bad = []
    for name, (path, digest) in make_all(args.outdir, args.vocab_from).items():
        print(f"{digest}  {path}")
        if args.check:
            fixture = os.path.join(args.check, f"greedy-{name}.json")
            with open(fixture, encoding="utf-8") as f:
                expected = json.load(f)["model_sha256"]
            if expected != digest:
                bad.append(f"{name}.gguf has sha256 {digest}, but {fixture} was made from {expected}")
    if bad:
        for line in bad:
            print("error: " + line, file=sys.stderr)
        print(f"error: the tiny models differ from the ones the fixtures were made from (gguf package "
              f"{package_version('gguf')}, numpy {np.__version__}); "
              f"regenerate them with scripts/make_fixtures.py", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
