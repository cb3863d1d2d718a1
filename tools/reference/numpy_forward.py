# Plain numpy forward pass of Llama / Qwen2 / Qwen3 causal LMs from an HF checkpoint directory: an
# independent check of the parity fixtures and the written-down math the C++ engine must reproduce.
#
# Usage (library; see check_fixtures.py):
#   cfg = load_config(model_dir); w = load_weights(model_dir)
#   logits = forward(cfg, w, token_ids)          # [len(token_ids), vocab] float64
#
# Everything is computed in float64 from the stored weights (bf16/f16 are widened exactly), so the
# only differences to HF's float32 run are HF's own float32 rounding.
#
# The math, as transformers 5.x implements it (names are the HF checkpoint tensor names):
#   x = embed_tokens[ids]                                     # [T, hidden]
#   per layer l:
#     h = rmsnorm(x, input_layernorm)                         # x / sqrt(mean(x^2) + eps) * w
#     q = h @ q_proj.T (+ q_proj.bias, qwen2)                 # [T, n_heads * head_dim], head-major
#     k = h @ k_proj.T (+ k_proj.bias, qwen2)                 # [T, n_kv_heads * head_dim]
#     v = h @ v_proj.T (+ v_proj.bias, qwen2)                 # [T, n_kv_heads * head_dim]
#     qwen3 only: q, k = rmsnorm(q per head, q_norm), rmsnorm(k per head, k_norm)  (over head_dim,
#                 BEFORE RoPE; the same [head_dim] weight for every head; same eps)
#     q, k = rope(q, pos), rope(k, pos)                       # rotate-half pairing (i, i + head_dim/2)
#     head i attends with kv head i // (n_heads / n_kv_heads); scores scaled by 1/sqrt(head_dim);
#     causal; softmax over keys 0..t
#     x = x + concat_heads(attn) @ o_proj.T                   # o_proj never has a bias here
#     h = rmsnorm(x, post_attention_layernorm)
#     x = x + (silu(h @ gate_proj.T) * (h @ up_proj.T)) @ down_proj.T
#   logits = rmsnorm(x, norm) @ lm_head.T     (lm_head = embed_tokens when tie_word_embeddings)

import json
import math
import os

import numpy as np
from safetensors import safe_open


# ---------------------------------------------------------------------------------------------
# Loading


def load_config(model_dir):
    """config.json -> the fields the forward needs. Accepts both rope spellings:
    transformers 5 writes rope_parameters = {rope_theta, rope_type, ...scaling keys};
    most Hub checkpoints have top-level rope_theta and rope_scaling = {rope_type|type, ...} or null."""
    with open(os.path.join(model_dir, "config.json")) as f:
        raw = json.load(f)
    arch = raw["architectures"][0]
    family = {"LlamaForCausalLM": "llama", "Qwen2ForCausalLM": "qwen2",
              "Qwen3ForCausalLM": "qwen3"}[arch]
    n_heads = raw["num_attention_heads"]
    rope = dict(raw.get("rope_parameters") or {})
    if "rope_theta" in raw:
        rope.setdefault("rope_theta", raw["rope_theta"])
    if raw.get("rope_scaling"):
        for key, value in raw["rope_scaling"].items():
            rope.setdefault(key, value)
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    return {
        "family": family,
        "vocab_size": raw["vocab_size"],
        "hidden_size": raw["hidden_size"],
        "n_layers": raw["num_hidden_layers"],
        "n_heads": n_heads,
        "n_kv_heads": raw.get("num_key_value_heads") or n_heads,
        # Qwen3 (and Llama when given) carry an explicit head_dim that need not be hidden/n_heads.
        "head_dim": raw.get("head_dim") or raw["hidden_size"] // n_heads,
        "rms_norm_eps": raw["rms_norm_eps"],
        "rope_theta": rope["rope_theta"],
        "rope_type": rope_type,
        "rope": rope,
        "tie_word_embeddings": raw.get("tie_word_embeddings", False),
        # Biases: qwen2 always has q/k/v biases; llama/qwen3 when attention_bias is true.
        "qkv_bias": family == "qwen2" or raw.get("attention_bias", False),
        "o_bias": family != "qwen2" and raw.get("attention_bias", False),
        "mlp_bias": raw.get("mlp_bias", False),
    }


def _read_raw(path, name):
    """One tensor straight from the file; for BF16, which numpy has no dtype for.
    Layout: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape,
    data_offsets: [begin, end)}} (offsets relative to the byte after the header), then data."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        info = json.loads(f.read(n))[name]
        begin, end = info["data_offsets"]
        f.seek(8 + n + begin)
        data = f.read(end - begin)
    assert info["dtype"] == "BF16", info
    bits = np.frombuffer(data, dtype="<u2").astype(np.uint32) << 16  # bf16 = upper half of f32
    return bits.view(np.float32).reshape(info["shape"])


def load_weights(model_dir):
    """All tensors of model.safetensors or of the shards named by model.safetensors.index.json,
    widened to float64."""
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    weights = {}
    for fn in files:
        path = os.path.join(model_dir, fn)
        with safe_open(path, framework="numpy") as f:
            for name in f.keys():
                if f.get_slice(name).get_dtype() == "BF16":
                    t = _read_raw(path, name)
                else:
                    t = f.get_tensor(name)
                weights[name] = t.astype(np.float64)
    return weights


# ---------------------------------------------------------------------------------------------
# Pieces


def rms_norm(x, weight, eps):
    """Over the last axis. HF: x * rsqrt(mean(x^2) + eps), cast back, then times weight."""
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def rope_inv_freq(cfg):
    """[head_dim/2] inverse frequencies: inv_freq[j] = theta^(-2j/head_dim), then rope scaling."""
    d = cfg["head_dim"]
    inv_freq = 1.0 / cfg["rope_theta"] ** (np.arange(0, d, 2, dtype=np.float64) / d)
    if cfg["rope_type"] == "default":
        return inv_freq
    if cfg["rope_type"] != "llama3":
        raise NotImplementedError(f"rope_type {cfg['rope_type']}")
    # Llama 3.1 scaling (transformers' _compute_llama3_parameters), per frequency:
    #   wavelen = 2*pi / inv_freq
    #   wavelen < old_ctx / high_freq_factor  -> unchanged                    (high band)
    #   wavelen > old_ctx / low_freq_factor   -> inv_freq / factor            (low band)
    #   otherwise                              -> (1 - s) * inv_freq / factor + s * inv_freq,
    #        s = (old_ctx / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    # (the band edges themselves count as interpolated; the formula is continuous there.)
    # No attention scaling factor: cos/sin are not multiplied by anything for llama3.
    r = cfg["rope"]
    factor, lo, hi = r["factor"], r["low_freq_factor"], r["high_freq_factor"]
    old_ctx = r["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv_freq
    s = (old_ctx / wavelen - lo) / (hi - lo)
    out = np.where(wavelen > old_ctx / lo, inv_freq / factor, (1 - s) * inv_freq / factor + s * inv_freq)
    return np.where(wavelen < old_ctx / hi, inv_freq, out)


def apply_rope(x, positions, inv_freq):
    """x: [T, n, head_dim]. HF "rotate-half" RoPE: dimension i is paired with i + head_dim/2 (not
    with i+1 as in Meta's / GGUF's interleaved layout), rotation angle = pos * inv_freq[i]:
        out[i]      = x[i] * cos - x[i + d/2] * sin
        out[i+d/2]  = x[i + d/2] * cos + x[i] * sin"""
    half = x.shape[-1] // 2
    angle = positions[:, None].astype(np.float64) * inv_freq[None, :]  # [T, d/2]
    cos, sin = np.cos(angle)[:, None, :], np.sin(angle)[:, None, :]
    x1, x2 = x[..., :half], x[..., half:]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


def attention(q, k, v, n_kv_heads):
    """q: [T, n_heads, d], k/v: [T, n_kv_heads, d] -> [T, n_heads * d]. Causal, full sequence.
    GQA: query head i reads kv head i // (n_heads // n_kv_heads) (consecutive query heads share)."""
    T, n_heads, d = q.shape
    group = n_heads // n_kv_heads
    out = np.empty_like(q)
    causal = np.triu(np.ones((T, T), dtype=bool), k=1)  # True above the diagonal = masked
    for h in range(n_heads):
        kv = h // group
        scores = q[:, h, :] @ k[:, kv, :].T / math.sqrt(d)  # [T, T]
        scores[causal] = -np.inf
        scores -= scores.max(axis=-1, keepdims=True)
        p = np.exp(scores)
        p /= p.sum(axis=-1, keepdims=True)
        out[:, h, :] = p @ v[:, kv, :]
    return out.reshape(T, n_heads * d)


def silu(x):
    return x / (1.0 + np.exp(-x))


# ---------------------------------------------------------------------------------------------
# Model


def forward(cfg, w, ids, positions=None):
    """Logits [len(ids), vocab] (float64) at every position of one sequence."""
    ids = np.asarray(ids, dtype=np.int64)
    T = len(ids)
    positions = np.arange(T) if positions is None else np.asarray(positions)
    nh, nkv, d, eps = cfg["n_heads"], cfg["n_kv_heads"], cfg["head_dim"], cfg["rms_norm_eps"]
    inv_freq = rope_inv_freq(cfg)

    x = w["model.embed_tokens.weight"][ids]  # [T, hidden]
    for layer in range(cfg["n_layers"]):
        p = f"model.layers.{layer}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        proj = {}
        for name in ("q", "k", "v"):
            y = h @ w[p + f"self_attn.{name}_proj.weight"].T  # weight [out, in]
            if cfg["qkv_bias"]:
                y = y + w[p + f"self_attn.{name}_proj.bias"]
            proj[name] = y
        q = proj["q"].reshape(T, nh, d)  # [T, n_heads, head_dim]
        k = proj["k"].reshape(T, nkv, d)  # [T, n_kv_heads, head_dim]
        v = proj["v"].reshape(T, nkv, d)
        if cfg["family"] == "qwen3":
            q = rms_norm(q, w[p + "self_attn.q_norm.weight"], eps)
            k = rms_norm(k, w[p + "self_attn.k_norm.weight"], eps)
        q = apply_rope(q, positions, inv_freq)
        k = apply_rope(k, positions, inv_freq)
        a = attention(q, k, v, nkv) @ w[p + "self_attn.o_proj.weight"].T
        if cfg["o_bias"]:
            a = a + w[p + "self_attn.o_proj.bias"]
        x = x + a

        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        gate = h @ w[p + "mlp.gate_proj.weight"].T
        up = h @ w[p + "mlp.up_proj.weight"].T
        if cfg["mlp_bias"]:
            gate, up = gate + w[p + "mlp.gate_proj.bias"], up + w[p + "mlp.up_proj.bias"]
        m = (silu(gate) * up) @ w[p + "mlp.down_proj.weight"].T
        if cfg["mlp_bias"]:
            m = m + w[p + "mlp.down_proj.bias"]
        x = x + m

    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else w["lm_head.weight"]
    return x @ head.T
