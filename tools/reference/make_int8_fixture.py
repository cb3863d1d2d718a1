# Writes int8 checkpoints in the compressed-tensors "int-quantized" layout (W8A8, what
# RedHatAI's "*-quantized.w8a8" R1-distill and Qwen checkpoints use, as vLLM loads them), and for
# each the float32 checkpoint of exactly its dequantized weights:
#   tests/data/models/llama3_w8a8/           I8 *_proj.weight + *_proj.weight_scale [out, 1] (F32)
#   tests/data/models/llama3_w8a8_dequant/   the same model in float32: W = int8 · scale
#   tests/data/models/qwen3_moe_w8a8{,_dequant}/  the same for a MoE model (every expert int8)
# Weights are symmetric per output channel (strategy "channel"); activations are dynamic per token
# ("input_activations": dynamic) — ponder quantizes them per block of 32 instead. Each row's
# largest |q| is 127 and every scale is a bf16 value, so q · scale is exact in float32 and
# `--quantize int8` on the dequantized twin gives back the very same int8 rows and scales: both
# checkpoints must give bitwise-identical logits. Matrices whose input width is not a multiple of
# 32 (llama3_bf16's down_proj: 200) stay float and are listed in "ignore", as lm_head would be
# (RedHatAI's checkpoints keep it; both sources tie it to the embedding); routers stay float.
#
#   /work/refenv2/bin/python tools/reference/make_int8_fixture.py    # torch, numpy, safetensors

import json
import os
import shutil

import numpy as np
from safetensors.numpy import save_file
from safetensors.torch import load_file

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS = os.path.join(REPO_ROOT, "tests", "data", "models")
SOURCES = {"llama3_w8a8": "llama3_bf16", "qwen3_moe_w8a8": "qwen3_moe_bf16"}
PROJ = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def round_to_bf16(x):
    """float32 → the nearest bf16 value (round to nearest even), as float32."""
    bits = x.astype(np.float32).view(np.uint32)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return bits.view(np.float32)


def quantize(w):
    """Per-row symmetric int8 with bf16-valued scales: returns (int8 q, f32 scale [rows, 1])."""
    amax = np.abs(w).max(axis=1, keepdims=True)
    scale = round_to_bf16(np.maximum(amax, 1e-8) / 127.0)
    q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
    # The largest element of each row becomes ±127 exactly (so that re-quantizing q · scale
    # recovers the same scale).
    arg = np.abs(w).argmax(axis=1)
    rows = np.arange(w.shape[0])
    q[rows, arg] = np.where(w[rows, arg] < 0, -127, 127).astype(np.int8)
    return q, scale.astype(np.float32)


def is_projection(name):
    return name.endswith(".weight") and name.split(".")[-2] in PROJ


def main():
    for out_name, source in SOURCES.items():
        src = os.path.join(MODELS, source)
        config = json.load(open(os.path.join(src, "config.json")))
        # numpy has no bf16: torch reads the source and widens it to float32 (exactly).
        tensors = {k: v.float().numpy() for k, v in load_file(os.path.join(src, "model.safetensors")).items()}
        quant, dequant, ignore = {}, {}, []
        for name, w in sorted(tensors.items()):
            if is_projection(name) and w.shape[1] % 32 == 0:
                q, s = quantize(w)
                quant[name] = q
                quant[name + "_scale"] = s
                dequant[name] = q.astype(np.float32) * s
            else:
                if is_projection(name) or name == "lm_head.weight":
                    ignore.append(name[: -len(".weight")])
                quant[name] = w
                dequant[name] = w
        qconfig = dict(config)
        qconfig["torch_dtype"] = "float32"
        qconfig.pop("dtype", None)
        qconfig["quantization_config"] = {
            "quant_method": "compressed-tensors",
            "format": "int-quantized",
            "quantization_status": "compressed",
            "config_groups": {"group_0": {
                "targets": ["Linear"],
                "weights": {"num_bits": 8, "type": "int", "symmetric": True, "strategy": "channel",
                            "dynamic": False, "group_size": None, "observer": "minmax"},
                "input_activations": {"num_bits": 8, "type": "int", "symmetric": True,
                                      "strategy": "token", "dynamic": True},
                "output_activations": None}},
            "ignore": sorted(set(ignore)),
            "kv_cache_scheme": None,
        }
        dconfig = dict(config)
        dconfig["torch_dtype"] = "float32"
        dconfig.pop("dtype", None)
        for name, cfg, data in ((out_name, qconfig, quant), (out_name + "_dequant", dconfig, dequant)):
            out = os.path.join(MODELS, name)
            shutil.rmtree(out, ignore_errors=True)
            os.makedirs(out)
            with open(os.path.join(out, "config.json"), "w") as f:
                json.dump(cfg, f, indent=2)
                f.write("\n")
            for extra in ("generation_config.json",):
                if os.path.exists(os.path.join(src, extra)):
                    shutil.copy(os.path.join(src, extra), out)
            save_file({k: np.ascontiguousarray(v) for k, v in data.items()},
                      os.path.join(out, "model.safetensors"))
            print(f"wrote {out}: {sum(v.nbytes for v in data.values()) / 1e3:.1f} kB")


if __name__ == "__main__":
    main()
