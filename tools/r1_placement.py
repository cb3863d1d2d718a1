#!/usr/bin/env python3
"""Memory per GPU of DeepSeek-R1 / V3 (671 B) placements, for docs/scaling.md.

Counts every tensor of the checkpoint as ponder shards it (worker/shard.h, worker/model/
model_weights.h): under tp, q_b/kv_b/o and every expert's and the dense/shared MLPs' rows split
tp ways, q_a and kv_a (the latent's projections), the norms and the router replicated; under ep,
the routed experts split ep ways; under pp, layers split across stages as WorldLayout splits
them, and the heaviest stage counts (the first also holds the embedding, the last lm_head). FP8 weights (1 byte, one f32 scale per
128 × 128 block), bf16 embedding/lm_head/norms/router, as DeepSeek ships them. The MLA cache is
one latent row (kv_lora_rank + qk_rope_head_dim = 576 values, bf16) per token and layer, kept
whole on every tp and ep rank of a stage (all heads read it).

Usage: python3 tools/r1_placement.py [--config DeepSeek-R1/config.json]   (prints markdown)
"""
import argparse
import json
import math

R1 = dict(vocab_size=129280, hidden_size=7168, intermediate_size=18432, moe_intermediate_size=2048,
          num_hidden_layers=61, first_k_dense_replace=3, num_attention_heads=128, q_lora_rank=1536,
          kv_lora_rank=512, qk_nope_head_dim=128, qk_rope_head_dim=64, v_head_dim=128,
          n_routed_experts=256, n_shared_experts=1, num_experts_per_tok=8)
BLOCK = 128
CONTEXT = 32768
RESERVE = 8e9  # activations, CUDA context, NCCL and cuBLAS workspaces per GPU


def fp8_bytes(rows, cols):
    return rows * cols + math.ceil(rows / BLOCK) * math.ceil(cols / BLOCK) * 4


def per_gpu(c, tp, ep, pp):
    h, heads = c["hidden_size"], c["num_attention_heads"]
    qk = c["qk_nope_head_dim"] + c["qk_rope_head_dim"]
    lat = c["kv_lora_rank"] + c["qk_rope_head_dim"]
    attn_rep = fp8_bytes(c["q_lora_rank"], h) + fp8_bytes(lat, h) + 2 * (
        c["q_lora_rank"] + c["kv_lora_rank"] + 2 * h)  # q_a, kv_a, norms (bf16)
    attn_tp = (fp8_bytes(heads * qk, c["q_lora_rank"]) +
               fp8_bytes(heads * (c["qk_nope_head_dim"] + c["v_head_dim"]), c["kv_lora_rank"]) +
               fp8_bytes(h, heads * c["v_head_dim"])) / tp
    dense = 3 * fp8_bytes(c["intermediate_size"], h) / tp
    f = c["moe_intermediate_size"]
    expert = 3 * fp8_bytes(f, h)
    routed = c["n_routed_experts"] * expert / (tp * ep)
    shared = c["n_shared_experts"] * expert / tp + 2 * c["n_routed_experts"] * (h + 1)
    layers = c["num_hidden_layers"]
    n_dense = c["first_k_dense_replace"]
    embed = 2 * c["vocab_size"] * h / tp  # bf16, vocabulary rows split tp ways
    # Stages as WorldLayout splits them (earlier stages take the remainder); the heaviest counts.
    weights, begin, per_stage = 0.0, 0, 0
    for st in range(pp):
        n = layers // pp + (1 if st < layers % pp else 0)
        d = max(0, min(n_dense, begin + n) - begin)
        w = n * (attn_rep + attn_tp) + d * dense + (n - d) * (routed + shared)
        w += embed * ((st == 0) + (st == pp - 1))
        weights, per_stage = max(weights, w), max(per_stage, n)
        begin += n
    kv_per_seq = per_stage * lat * 2 * CONTEXT
    return weights, kv_per_seq


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", help="a DeepseekV3ForCausalLM config.json (default: R1's sizes)")
    args = ap.parse_args()
    c = dict(R1)
    if args.config:
        with open(args.config) as fh:
            c.update({k: v for k, v in json.load(fh).items() if k in R1})
    machines = [("1 × 8 H200 141 GB", 141e9, [(8, 1, 1), (1, 8, 1), (2, 4, 1), (4, 2, 1), (1, 1, 8)]),
                ("2 × 8 H100 80 GB", 80e9, [(8, 1, 2), (8, 2, 1), (2, 8, 1), (1, 16, 1), (16, 1, 1),
                                            (4, 2, 2)])]
    print("| machine | layout | weights / GPU | latent KV / 32k sequence / GPU | 32k sequences that fit |")
    print("|---|---|---|---|---|")
    for name, mem, layouts in machines:
        for tp, ep, pp in layouts:
            w, kv = per_gpu(c, tp, ep, pp)
            free = mem - RESERVE - w
            fits = int(free // kv) if free > 0 else 0
            label = f"tp{tp}" + (f" ep{ep}" if ep > 1 else "") + (f" pp{pp}" if pp > 1 else "")
            print(f"| {name} | {label} | {w / 1e9:.1f} GB | {kv / 1e9:.2f} GB | "
                  f"{fits if free > 0 else 'does not fit'} |")


if __name__ == "__main__":
    main()
