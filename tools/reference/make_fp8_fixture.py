# Writes an FP8 block-quantized DeepSeek-V3 checkpoint in DeepSeek's own format, and the bf16
# checkpoint of exactly its dequantized weights, from the deepseek_v3_f32 parity fixture:
#   tests/data/models/deepseek_v3_fp8/          F8_E4M3 *_proj.weight + *_proj.weight_scale_inv (F32)
#   tests/data/models/deepseek_v3_fp8_dequant/  the same model in bf16: W = bf16(fp8(W) · scale_inv)
# The engine must load the first into the same bf16 weights as the second, so both give identical
# logits and greedy tokens. As in DeepSeek's release, the linear projections of every layer
# (attention, dense MLP, routed and shared experts) are FP8; embeddings, lm_head, norms, the
# router and its bias are not. Blocks are 16 × 16 here (DeepSeek uses 128 × 128) so that the tiny
# matrices have several blocks and partial ones at their edges.
#
#   /work/refenv2/bin/python tools/reference/make_fp8_fixture.py    # torch ≥ 2.1 (float8_e4m3fn)

import json
import os
import shutil

import torch
from safetensors.torch import load_file, save_file

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS = os.path.join(REPO_ROOT, "tests", "data", "models")
SOURCE = os.path.join(MODELS, "deepseek_v3_f32")
BLOCK = (16, 16)
FP8_MAX = 448.0  # largest finite float8_e4m3fn


def quantize(w):
    """Per-block absmax scaling: returns (fp8 weight, f32 scale_inv) with W ≈ fp8 · scale_inv."""
    rows, cols = w.shape
    br, bc = BLOCK
    nr, nc = -(-rows // br), -(-cols // bc)
    q = torch.empty(rows, cols, dtype=torch.float8_e4m3fn)
    scale_inv = torch.empty(nr, nc, dtype=torch.float32)
    for i in range(nr):
        for j in range(nc):
            block = w[i * br:(i + 1) * br, j * bc:(j + 1) * bc].float()
            s = block.abs().max().clamp(min=1e-12) / FP8_MAX
            q[i * br:(i + 1) * br, j * bc:(j + 1) * bc] = (block / s).to(torch.float8_e4m3fn)
            scale_inv[i, j] = s
    return q, scale_inv


def dequantize(q, scale_inv):
    br, bc = BLOCK
    s = scale_inv.repeat_interleave(br, 0)[:q.shape[0]].repeat_interleave(bc, 1)[:, :q.shape[1]]
    return (q.float() * s).to(torch.bfloat16)


def main():
    weights = load_file(os.path.join(SOURCE, "model.safetensors"))
    fp8, dequant = {}, {}
    for name, t in sorted(weights.items()):
        if ".layers." in name and name.endswith("_proj.weight"):
            q, s = quantize(t)
            fp8[name], fp8[name + "_scale_inv"] = q, s
            dequant[name] = dequantize(q, s)
        elif name.endswith("e_score_correction_bias"):
            fp8[name] = dequant[name] = t.float()
        else:
            fp8[name] = dequant[name] = t.to(torch.bfloat16)
    with open(os.path.join(SOURCE, "config.json")) as f:
        config = json.load(f)
    config["dtype"] = config["torch_dtype"] = "bfloat16"
    for case, tensors, quantized in (("deepseek_v3_fp8", fp8, True),
                                     ("deepseek_v3_fp8_dequant", dequant, False)):
        out = os.path.join(MODELS, case)
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        cfg = dict(config)
        if quantized:
            cfg["quantization_config"] = {"activation_scheme": "dynamic", "fmt": "e4m3",
                                          "quant_method": "fp8", "weight_block_size": list(BLOCK)}
        with open(os.path.join(out, "config.json"), "w") as f:
            json.dump(dict(sorted(cfg.items())), f, indent=2)
            f.write("\n")
        shutil.copy(os.path.join(SOURCE, "generation_config.json"), out)
        with open(os.path.join(SOURCE, "parity.json")) as f:
            prompts = json.load(f)["prompts"]
        with open(os.path.join(out, "prompts.json"), "w") as f:  # what the test runs
            f.write(json.dumps({"prompts": prompts}, separators=(",", ":")) + "\n")
        save_file(tensors, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
        size = os.path.getsize(os.path.join(out, "model.safetensors"))
        n_fp8 = sum(1 for t in tensors.values() if t.dtype == torch.float8_e4m3fn)
        print(f"{case}: {len(tensors)} tensors ({n_fp8} FP8), {size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
