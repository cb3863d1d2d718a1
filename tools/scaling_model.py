#!/usr/bin/env python3
"""Bytes × bandwidth model of tensor/pipeline-parallel communication for docs/scaling.md.

Counts are the ones `ponder bench --tp/--pp` measures (and matches exactly) on CPU ranks:
per token per rank, TP moves 2 all-reduces of hidden × dtype bytes per layer; PP moves one
hidden / tp slice per stage boundary. Here they are priced on GPU clusters.

Usage: python3 tools/scaling_model.py   (prints the markdown table used in docs/scaling.md)
"""
import math

# Llama-3-70B shape (DeepSeek-R1-Distill-Llama-70B), bf16 activations on the GPU.
HIDDEN, LAYERS, DTYPE = 8192, 80, 2
GPUS_PER_NODE = 8
NVLINK_BW = 450e9        # bytes/s per GPU per direction (H100 NVLink 4: 900 GB/s bidirectional)
NODE_BW = 400e9 / 8      # bytes/s: one 400 Gb/s link per node, shared by its 8 GPUs
ALPHA_NVLINK = 10e-6     # s: latency of one small all-reduce inside a node (NCCL LL protocol)
ALPHA_NET = 25e-6        # s: latency of one small all-reduce step across nodes
P2P_ALPHA_NET = 10e-6    # s: one send between nodes


def allreduce_seconds(payload, tp):
    """Ring all-reduce: every rank sends 2 (tp-1)/tp of the payload; nodes share their link."""
    if tp == 1:
        return 0.0
    nodes = math.ceil(tp / GPUS_PER_NODE)
    wire = 2 * (tp - 1) / tp * payload
    if nodes == 1:
        return ALPHA_NVLINK + wire / NVLINK_BW
    # Hierarchical: reduce inside the node over NVLink, then across nodes where the node's 8
    # GPUs share one link (each sends its 1/8 share of the cross-node ring traffic).
    cross = 2 * (nodes - 1) / nodes * payload
    return ALPHA_NVLINK + wire / NVLINK_BW + ALPHA_NET * math.log2(nodes) + cross / NODE_BW


def step_costs(tp, pp, tokens):
    layers_per_stage = LAYERS / pp
    payload = tokens * HIDDEN * DTYPE
    tp_time = 2 * layers_per_stage * allreduce_seconds(payload, tp)
    ranks = tp * pp
    boundary_crosses_nodes = ranks > GPUS_PER_NODE
    slice_bytes = payload / tp
    if pp == 1:
        pp_time = 0.0
    elif boundary_crosses_nodes:
        # tp ranks of a stage send their slices together over the node link.
        pp_time = (pp - 1) * (P2P_ALPHA_NET + payload / NODE_BW)
    else:
        pp_time = (pp - 1) * (ALPHA_NVLINK + slice_bytes / NVLINK_BW)
    return {
        "tp_bytes_per_rank": 2 * layers_per_stage * payload,
        "pp_bytes_per_rank": slice_bytes if pp > 1 else 0,
        "tp_ms": tp_time * 1e3,
        "pp_ms": pp_time * 1e3,
    }


def main():
    print("| layout | nodes | tokens/step | TP bytes/rank | TP time | PP bytes/rank | PP time |")
    print("|---|---|---|---|---|---|---|")
    for tp, pp in [(8, 1), (8, 2), (16, 1), (8, 8), (64, 1)]:
        for tokens in (1, 64, 2048):
            c = step_costs(tp, pp, tokens)
            print(f"| tp{tp} pp{pp} | {tp * pp // GPUS_PER_NODE} | {tokens} | "
                  f"{c['tp_bytes_per_rank'] / 1e6:.2f} MB | {c['tp_ms']:.2f} ms | "
                  f"{c['pp_bytes_per_rank'] / 1e6:.3f} MB | {c['pp_ms']:.3f} ms |")


if __name__ == "__main__":
    main()
