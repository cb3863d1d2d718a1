#!/usr/bin/env python3
# Writes a random-weight Llama-, Qwen3- or DeepSeek-V3-shaped model from a fixed seed in Hugging Face layout
# (config.json, model.safetensors, generation_config.json); numpy only, for CI and the demo.
#
#   /usr/bin/python3 tools/make_random_model.py --preset default --dtype bf16 --out models/random-default
#   /usr/bin/python3 tools/make_random_model.py --preset default --tokenizer /work/shared/tokenizers/qwen3 \
#       --out models/random-default
#   /usr/bin/python3 tools/make_random_model.py --preset 0.85b --out /tmp/m   # 1.7 GB bf16, ~20 s
#   /usr/bin/python3 tools/make_random_model.py --preset moe --out /tmp/moe   # DeepSeek-V3 shape, 0.54 GB
#
# Weights: every linear (and lm_head) ~ N(0, 1/fan_in), embeddings ~ N(0, 1/hidden), RMSNorm weights
# (incl. qwen3 q_norm/k_norm) = 1. Each tensor has its own generator seeded from (--seed, tensor
# index), so the output is byte-identical for the same arguments. Tensors are generated and written
# in chunks; memory stays at a few MB whatever the model size.

import argparse
import json
import os
import shutil
import sys

import numpy as np

PRESETS = {
    # name: hidden, layers, heads, kv heads, head_dim (None: hidden/heads), ffn, default arch, tied
    "15m": dict(hidden=288, layers=6, heads=6, kv_heads=6, head_dim=None, ffn=768, arch="llama",
                tie=True),
    "125m": dict(hidden=768, layers=12, heads=12, kv_heads=4, head_dim=None, ffn=2048, arch="llama",
                 tie=False),
    "0.85b": dict(hidden=2048, layers=16, heads=32, kv_heads=8, head_dim=None, ffn=5632, arch="llama",
                  tie=False),
    "default": dict(hidden=128, layers=4, heads=4, kv_heads=2, head_dim=32, ffn=384, arch="qwen3",
                    tie=True),
    # DeepSeek-V3's shape at 0.27 B (0.54 GB bf16): MLA, one dense layer, then 32 routed experts
    # (top 4 of 8 groups' best 4) and a shared one; ~90 M parameters active per token.
    "moe": dict(hidden=1024, layers=8, heads=16, kv_heads=16, head_dim=None, ffn=2816,
                arch="deepseek_v3", tie=False,
                mla=dict(q_lora_rank=384, kv_lora_rank=256, qk_nope_head_dim=64,
                         qk_rope_head_dim=32, v_head_dim=64),
                moe=dict(n_routed_experts=32, num_experts_per_tok=4, moe_intermediate_size=256,
                         n_shared_experts=1, n_group=8, topk_group=4, first_k_dense_replace=1)),
}
DEFAULT_VOCAB = 32000
DTYPES = {"bf16": ("BF16", 2, "bfloat16"), "f16": ("F16", 2, "float16"), "f32": ("F32", 4, "float32")}
CHUNK_ELEMENTS = 1 << 20  # generate/convert/write this many values at a time (cache-sized)


# ---------------------------------------------------------------------------------------------
# Shapes and config


def deepseek_specs(shape):
    """DeepseekV3ForCausalLM tensors in the Hub's per-expert layout."""
    h, a, m = shape["hidden"], shape["mla"], shape["moe"]
    heads, qk = shape["heads"], a["qk_nope_head_dim"] + a["qk_rope_head_dim"]
    specs = [("model.embed_tokens.weight", [shape["vocab"], h], "embed"),
             ("model.norm.weight", [h], "norm"), ("lm_head.weight", [shape["vocab"], h], "linear")]

    def mlp(prefix, ffn):
        return [(prefix + "gate_proj.weight", [ffn, h], "linear"),
                (prefix + "up_proj.weight", [ffn, h], "linear"),
                (prefix + "down_proj.weight", [h, ffn], "linear")]

    for i in range(shape["layers"]):
        p = f"model.layers.{i}."
        at = p + "self_attn."
        specs += [
            (p + "input_layernorm.weight", [h], "norm"),
            (p + "post_attention_layernorm.weight", [h], "norm"),
            (at + "q_a_proj.weight", [a["q_lora_rank"], h], "linear"),
            (at + "q_a_layernorm.weight", [a["q_lora_rank"]], "norm"),
            (at + "q_b_proj.weight", [heads * qk, a["q_lora_rank"]], "linear"),
            (at + "kv_a_proj_with_mqa.weight", [a["kv_lora_rank"] + a["qk_rope_head_dim"], h], "linear"),
            (at + "kv_a_layernorm.weight", [a["kv_lora_rank"]], "norm"),
            (at + "kv_b_proj.weight", [heads * (a["qk_nope_head_dim"] + a["v_head_dim"]),
                                       a["kv_lora_rank"]], "linear"),
            (at + "o_proj.weight", [h, heads * a["v_head_dim"]], "linear"),
        ]
        if i < m["first_k_dense_replace"]:
            specs += mlp(p + "mlp.", shape["ffn"])
            continue
        specs += [(p + "mlp.gate.weight", [m["n_routed_experts"], h], "linear"),
                  (p + "mlp.gate.e_score_correction_bias", [m["n_routed_experts"]], "norm")]
        specs += mlp(p + "mlp.shared_experts.", m["moe_intermediate_size"] * m["n_shared_experts"])
        for e in range(m["n_routed_experts"]):
            specs += mlp(p + f"mlp.experts.{e}.", m["moe_intermediate_size"])
    return sorted(specs)


def tensor_specs(shape, arch):
    """[(name, [rows, cols] or [n], kind)] in HF naming; kind picks the init."""
    if arch == "deepseek_v3":
        return deepseek_specs(shape)
    h, d = shape["hidden"], shape["head_dim"]
    q_dim, kv_dim, ffn, vocab = shape["heads"] * d, shape["kv_heads"] * d, shape["ffn"], shape["vocab"]
    specs = [("model.embed_tokens.weight", [vocab, h], "embed"), ("model.norm.weight", [h], "norm")]
    if not shape["tie"]:
        specs.append(("lm_head.weight", [vocab, h], "linear"))
    for i in range(shape["layers"]):
        p = f"model.layers.{i}."
        specs += [
            (p + "input_layernorm.weight", [h], "norm"),
            (p + "post_attention_layernorm.weight", [h], "norm"),
            (p + "self_attn.q_proj.weight", [q_dim, h], "linear"),  # [out, in]
            (p + "self_attn.k_proj.weight", [kv_dim, h], "linear"),
            (p + "self_attn.v_proj.weight", [kv_dim, h], "linear"),
            (p + "self_attn.o_proj.weight", [h, q_dim], "linear"),
            (p + "mlp.gate_proj.weight", [ffn, h], "linear"),
            (p + "mlp.up_proj.weight", [ffn, h], "linear"),
            (p + "mlp.down_proj.weight", [h, ffn], "linear"),
        ]
        if arch == "qwen3":
            specs += [(p + "self_attn.q_norm.weight", [d], "norm"),
                      (p + "self_attn.k_norm.weight", [d], "norm")]
    return sorted(specs)


def make_config(shape, arch, dtype_name, bos, eos):
    cfg = {
        "architectures": ["Qwen3ForCausalLM" if arch == "qwen3" else "LlamaForCausalLM"],
        "model_type": arch,
        "hidden_size": shape["hidden"],
        "intermediate_size": shape["ffn"],
        "num_hidden_layers": shape["layers"],
        "num_attention_heads": shape["heads"],
        "num_key_value_heads": shape["kv_heads"],
        "head_dim": shape["head_dim"],
        "hidden_act": "silu",
        "vocab_size": shape["vocab"],
        "max_position_embeddings": 4096 if arch == "qwen3" else 2048,
        "rms_norm_eps": 1e-6 if arch == "qwen3" else 1e-5,
        "rope_theta": 1000000.0 if arch == "qwen3" else 10000.0,
        "rope_scaling": None,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "tie_word_embeddings": shape["tie"],
        "bos_token_id": bos,
        "eos_token_id": eos,
        "initializer_range": 0.02,
        "use_cache": True,
        "torch_dtype": dtype_name,
        "dtype": dtype_name,
    }
    if arch == "llama":
        cfg.update({"mlp_bias": False, "pretraining_tp": 1})
    elif arch == "deepseek_v3":
        cfg["architectures"] = ["DeepseekV3ForCausalLM"]
        cfg.update(shape["mla"])
        cfg.update(shape["moe"])
        cfg.update({"rope_interleave": True, "scoring_func": "sigmoid", "topk_method": "noaux_tc",
                    "norm_topk_prob": True, "routed_scaling_factor": 2.5, "rope_theta": 10000.0,
                    "num_nextn_predict_layers": 0, "rms_norm_eps": 1e-6})
        del cfg["head_dim"]
    else:
        cfg.update({"use_sliding_window": False, "sliding_window": None,
                    "max_window_layers": shape["layers"]})
    return cfg


def read_tokenizer(tok_dir):
    """(full vocab size incl. added tokens, bos id or None, eos id or None) of an HF tokenizer."""
    with open(os.path.join(tok_dir, "tokenizer.json"), encoding="utf-8") as f:
        tok = json.load(f)
    with open(os.path.join(tok_dir, "tokenizer_config.json"), encoding="utf-8") as f:
        tok_cfg = json.load(f)
    ids = dict(tok["model"]["vocab"])
    ids.update({t["content"]: t["id"] for t in tok.get("added_tokens", [])})
    vocab = max(ids.values()) + 1

    def token_id(key):
        t = tok_cfg.get(key)
        if isinstance(t, dict):  # AddedToken form {"content": ..., ...}
            t = t.get("content")
        if t is None:
            return None
        if t not in ids:
            sys.exit(f"{tok_dir}/tokenizer_config.json: {key} {t!r} is not in tokenizer.json")
        return ids[t]

    return vocab, token_id("bos_token"), token_id("eos_token")


# ---------------------------------------------------------------------------------------------
# safetensors writer


def to_storage(x, st_dtype):
    """float32 chunk -> bytes-ready array of the stored dtype."""
    if st_dtype == "F32":
        return x
    if st_dtype == "F16":
        return x.astype(np.float16)  # round to nearest even
    # BF16: upper 16 bits of the f32 pattern, rounded to nearest even (no NaN/inf in normals).
    u = x.view(np.uint32)
    lsb = np.right_shift(u, 16)
    np.bitwise_and(lsb, 1, out=lsb)
    lsb += 0x7FFF
    u += lsb
    np.right_shift(u, 16, out=u)
    return u.astype(np.uint16)


def write_safetensors(path, specs, shape, st_dtype, itemsize, seed):
    header, offset = {}, 0
    for name, dims, _ in specs:
        nbytes = int(np.prod(dims)) * itemsize
        header[name] = {"dtype": st_dtype, "shape": dims, "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    header["__metadata__"] = {"format": "pt"}
    blob = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    blob += b" " * (-(8 + len(blob)) % 8)  # data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(len(blob).to_bytes(8, "little"))
        f.write(blob)
        for index, (name, dims, kind) in enumerate(specs):
            n = int(np.prod(dims))
            if kind == "norm":
                f.write(to_storage(np.ones(n, dtype=np.float32), st_dtype).tobytes())
                continue
            fan_in = shape["hidden"] if kind == "embed" else dims[1]
            std = np.float32(1.0 / np.sqrt(fan_in))
            rng = np.random.default_rng([seed, index])
            for start in range(0, n, CHUNK_ELEMENTS):
                x = rng.standard_normal(min(CHUNK_ELEMENTS, n - start), dtype=np.float32)
                x *= std
                to_storage(x, st_dtype).tofile(f)
    return offset


def main():
    ap = argparse.ArgumentParser(description="Write a random-weight Llama/Qwen3-shaped HF model.")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="default")
    ap.add_argument("--arch", choices=["llama", "qwen3", "deepseek_v3"], help="default: the preset's")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--tokenizer", help="directory with tokenizer.json + tokenizer_config.json: "
                    "copied into --out; sets vocab_size and bos/eos ids")
    ap.add_argument("--tie", action=argparse.BooleanOptionalAction,
                    help="tie lm_head to the embeddings (default: the preset's)")
    args = ap.parse_args()

    preset = PRESETS[args.preset]
    arch = args.arch or preset["arch"]
    shape = dict(preset)
    shape["head_dim"] = preset["head_dim"] or preset["hidden"] // preset["heads"]
    shape["tie"] = preset["tie"] if args.tie is None else args.tie
    if args.tokenizer:
        shape["vocab"], bos, eos = read_tokenizer(args.tokenizer)
    else:
        shape["vocab"], bos, eos = DEFAULT_VOCAB, 1, 2
    st_dtype, itemsize, dtype_name = DTYPES[args.dtype]

    os.makedirs(args.out, exist_ok=True)
    specs = tensor_specs(shape, arch)
    nbytes = write_safetensors(os.path.join(args.out, "model.safetensors"), specs, shape, st_dtype,
                               itemsize, args.seed)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(make_config(shape, arch, dtype_name, bos, eos), f, indent=2)
        f.write("\n")
    with open(os.path.join(args.out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": bos, "eos_token_id": eos}, f, indent=2)
        f.write("\n")
    if args.tokenizer:
        for fn in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copyfile(os.path.join(args.tokenizer, fn), os.path.join(args.out, fn))
    n_params = nbytes // itemsize
    print(f"wrote {args.out}: {arch}, {n_params / 1e6:.1f} M parameters, {args.dtype}, "
          f"vocab {shape['vocab']}, {nbytes / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
