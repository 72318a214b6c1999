#!/usr/bin/env python3
"""An fp32 reference forward of a GGUF model (llama and qwen2 architectures): every weight
dequantised with the `gguf` package, every activation and accumulation in float32 (numpy), no KV
cache, one causal pass over the whole sequence. The fidelity benchmark's yardstick: Relay's and
llama.cpp's logits are compared with these.

Usage:
  python3 scripts/reference_forward.py MODEL.gguf --tokens 1,2,3 [--greedy N] [--logits-out F --positions 0,8,16]

--greedy N appends N greedy tokens (a full pass per token: for checks on short texts) and prints
the token ids as JSON; --logits-out writes float32 logits rows (positions x vocabulary) for the
given positions of one pass over --tokens.
"""
import argparse
import json
import sys

import numpy as np
import gguf
from gguf.quants import dequantize


class Reference:
    def __init__(self, path):
        r = gguf.GGUFReader(path)
        self.fields = {k: f for k, f in r.fields.items()}
        arch = self.string("general.architecture")
        if arch not in ("llama", "qwen2"):
            raise SystemExit(f"{path}: architecture {arch} is not supported here (llama, qwen2)")
        self.neox = arch == "qwen2"   # llama.cpp: qwen2 rotates halves, llama rotates pairs
        p = arch + "."
        self.layers = self.int(p + "block_count")
        self.dim = self.int(p + "embedding_length")
        self.heads = self.int(p + "attention.head_count")
        self.kv_heads = self.int(p + "attention.head_count_kv", self.heads)
        self.eps = self.float(p + "attention.layer_norm_rms_epsilon")
        self.theta = self.float(p + "rope.freq_base", 10000.0)
        self.head_dim = self.dim // self.heads
        self.w = {}
        for t in r.tensors:
            a = dequantize(t.data, t.tensor_type).astype(np.float32)
            self.w[t.name] = a.reshape([int(x) for x in reversed(t.shape)]) if a.ndim > 1 or len(t.shape) > 1 else a
        self.out = self.w.get("output.weight", self.w["token_embd.weight"])

    def field(self, key):
        f = self.fields.get(key)
        return None if f is None else f.parts[f.data[0]]

    def string(self, key):
        return bytes(self.field(key)).decode()

    def int(self, key, default=None):
        v = self.field(key)
        return default if v is None else int(v[0])

    def float(self, key, default=None):
        v = self.field(key)
        return default if v is None else float(v[0])

    def rms(self, x, w):
        return (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + np.float32(self.eps))).astype(np.float32) * w

    def rope(self, x, positions):
        # x: (T, heads, head_dim)
        d = self.head_dim
        inv = (1.0 / (self.theta ** (np.arange(0, d, 2, dtype=np.float64) / d))).astype(np.float64)
        ang = positions[:, None].astype(np.float64) * inv[None, :]
        cos, sin = np.cos(ang).astype(np.float32)[:, None, :], np.sin(ang).astype(np.float32)[:, None, :]
        if self.neox:
            a, b = x[..., : d // 2], x[..., d // 2:]
            return np.concatenate([a * cos - b * sin, a * sin + b * cos], axis=-1)
        a, b = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = a * cos - b * sin
        out[..., 1::2] = a * sin + b * cos
        return out

    def logits(self, ids):
        ids = np.asarray(ids, dtype=np.int64)
        T = len(ids)
        pos = np.arange(T)
        x = self.w["token_embd.weight"][ids].astype(np.float32)
        mask = np.triu(np.full((T, T), -np.inf, dtype=np.float32), 1)
        group = self.heads // self.kv_heads
        for i in range(self.layers):
            b = f"blk.{i}."
            h = self.rms(x, self.w[b + "attn_norm.weight"])
            q = h @ self.w[b + "attn_q.weight"].T
            k = h @ self.w[b + "attn_k.weight"].T
            v = h @ self.w[b + "attn_v.weight"].T
            if b + "attn_q.bias" in self.w:
                q, k, v = q + self.w[b + "attn_q.bias"], k + self.w[b + "attn_k.bias"], v + self.w[b + "attn_v.bias"]
            q = self.rope(q.reshape(T, self.heads, self.head_dim), pos)
            k = self.rope(k.reshape(T, self.kv_heads, self.head_dim), pos)
            v = v.reshape(T, self.kv_heads, self.head_dim)
            k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
            s = np.einsum("thd,shd->hts", q, k) / np.float32(np.sqrt(self.head_dim)) + mask
            s = np.exp(s - s.max(axis=-1, keepdims=True))
            s /= s.sum(axis=-1, keepdims=True)
            o = np.einsum("hts,shd->thd", s, v).reshape(T, self.dim)
            x = x + o @ self.w[b + "attn_output.weight"].T
            h = self.rms(x, self.w[b + "ffn_norm.weight"])
            g, u = h @ self.w[b + "ffn_gate.weight"].T, h @ self.w[b + "ffn_up.weight"].T
            x = x + ((g / (1 + np.exp(-g))) * u) @ self.w[b + "ffn_down.weight"].T
        x = self.rms(x, self.w["output_norm.weight"])
        return (x @ self.out.T).astype(np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--tokens", required=True, help="comma-separated token ids")
    ap.add_argument("--greedy", type=int, default=0)
    ap.add_argument("--logits-out")
    ap.add_argument("--positions", help="comma-separated positions for --logits-out (default: all)")
    a = ap.parse_args()
    ref = Reference(a.model)
    ids = [int(t) for t in a.tokens.split(",") if t]
    if a.greedy:
        out = []
        for _ in range(a.greedy):
            out.append(int(np.argmax(ref.logits(ids + out)[-1])))
        print(json.dumps(out))
    if a.logits_out:
        rows = ref.logits(ids)
        if a.positions:
            rows = rows[[int(p) for p in a.positions.split(",")]]
        rows.astype(np.float32).tofile(a.logits_out)
        print(f"{rows.shape[0]} rows of {rows.shape[1]} logits -> {a.logits_out}", file=sys.stderr)


if __name__ == "__main__":
    main()
