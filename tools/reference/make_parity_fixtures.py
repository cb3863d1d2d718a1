# Writes the golden-logit parity fixtures (tests/data/models/<case>/) that the C++ engine is tested
# against: tiny random-weight Llama/Qwen2/Qwen3 checkpoints in real HF layout plus HF's own outputs.
#
# Run from the repository root (deterministic: fixed seeds, single-threaded torch):
#   /work/refenv/bin/python tools/reference/make_parity_fixtures.py            # all cases
#   /work/refenv/bin/python tools/reference/make_parity_fixtures.py qwen3_f32  # some cases
# Then check them independently against the plain numpy forward:
#   /work/refenv/bin/python tools/reference/check_fixtures.py
#
# Per case it writes config.json, model.safetensors (or model-0000x-of-0000y.safetensors + index),
# generation_config.json, parity.json and parity.safetensors; the format is in tests/data/models/README.md.
# Reduced-precision cases (bf16/f16): the primary reference ("logits.<i>", "greedy") is HF run in
# float32 on exactly the rounded weights stored in the file (the engine keeps weights in bf16/f16 but
# computes in f32); "logits_native.<i>" is HF run end to end in the stored dtype, for a looser check.

import argparse
import dataclasses
import json
import math
import os
import shutil
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers.utils import logging as hf_logging
from transformers import (LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM,
                          Qwen3Config, Qwen3ForCausalLM)

torch.set_num_threads(1)
hf_logging.disable_progress_bar()
torch.use_deterministic_algorithms(True)

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT_ROOT = os.path.join(REPO_ROOT, "tests", "data", "models")

PROMPT_LENGTHS = (1, 7, 19)
NEW_TOKENS = 32
MIN_MARGIN = 0.01  # smallest top1-top2 logit gap accepted at any greedy step
MIN_DISTINCT = 8  # fewest distinct tokens accepted in a 32-token greedy continuation
MAX_PROMPT_ATTEMPTS = 50

# Weight init, much wider than HF's N(0, 0.02) so logits are far from flat and greedy decoding
# does not collapse into one repeated token.
LINEAR_GAIN = 1.5  # q/k/v/o/gate/up/down: N(0, (gain / sqrt(fan_in))^2)
EMBED_STD = 1.0  # untied input embeddings
LM_HEAD_STD = 0.4  # untied lm_head
TIED_STD = 0.15  # tied embeddings: small next to the layer outputs, else a tied model repeats its input
BIAS_STD = 0.2  # qwen2 q/k/v biases
NORM_STD = 0.1  # every RMSNorm weight is 1 + NORM_STD * randn, times a scale (1 but for the final norm)
LOGIT_STD = 3.0  # the final norm's scale is chosen so that logits have about this spread

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
FAMILIES = {
    "llama": (LlamaConfig, LlamaForCausalLM),
    "qwen2": (Qwen2Config, Qwen2ForCausalLM),
    "qwen3": (Qwen3Config, Qwen3ForCausalLM),
}


@dataclasses.dataclass
class Case:
    name: str
    family: str  # key of FAMILIES
    dtype: str  # key of DTYPES: the dtype the weights are stored in
    seed: int
    config: dict  # model config kwargs (HF names)
    # "v5": config.json exactly as transformers 5 writes it (rope_parameters: {rope_theta, rope_type, ...}).
    # "legacy": rewritten the way most Hub checkpoints ship (top-level rope_theta, rope_scaling).
    config_style: str = "v5"
    max_shard_size: str | None = None  # set: save sharded


CASES = [
    Case("llama_f32", "llama", "float32", 1001, dict(
        vocab_size=317, hidden_size=72, num_attention_heads=6, num_key_value_heads=2, head_dim=12,
        intermediate_size=100, num_hidden_layers=3, rope_theta=10000.0, rms_norm_eps=1e-5,
        max_position_embeddings=256, tie_word_embeddings=False)),
    Case("llama3_bf16", "llama", "bfloat16", 1002, dict(
        vocab_size=401, hidden_size=96, num_attention_heads=6, num_key_value_heads=2, head_dim=16,
        intermediate_size=200, num_hidden_layers=3, rope_theta=10000.0, rms_norm_eps=1e-5,
        max_position_embeddings=512, tie_word_embeddings=True,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 64}),
        config_style="legacy"),
    Case("llama_f16", "llama", "float16", 1003, dict(
        vocab_size=311, hidden_size=64, num_attention_heads=4, num_key_value_heads=1, head_dim=16,
        intermediate_size=172, num_hidden_layers=2, rope_theta=500000.0, rms_norm_eps=1e-5,
        max_position_embeddings=256, tie_word_embeddings=False),
        config_style="legacy"),
    Case("qwen2_f32", "qwen2", "float32", 1004, dict(
        vocab_size=307, hidden_size=80, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=136, num_hidden_layers=2, rope_theta=1000000.0, rms_norm_eps=1e-6,
        max_position_embeddings=256, tie_word_embeddings=True)),
    Case("qwen2_bf16", "qwen2", "bfloat16", 1005, dict(
        vocab_size=389, hidden_size=96, num_attention_heads=8, num_key_value_heads=2,
        intermediate_size=200, num_hidden_layers=2, rope_theta=10000.0, rms_norm_eps=1e-6,
        max_position_embeddings=256, tie_word_embeddings=False),
        config_style="legacy"),
    Case("qwen3_f32", "qwen3", "float32", 1006, dict(
        vocab_size=353, hidden_size=80, num_attention_heads=4, num_key_value_heads=2, head_dim=24,
        intermediate_size=144, num_hidden_layers=2, rope_theta=1000000.0, rms_norm_eps=1e-6,
        max_position_embeddings=256, tie_word_embeddings=True)),
    Case("qwen3_bf16_sharded", "qwen3", "bfloat16", 1007, dict(
        vocab_size=419, hidden_size=64, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
        intermediate_size=176, num_hidden_layers=4, rope_theta=1000000.0, rms_norm_eps=1e-6,
        max_position_embeddings=256, tie_word_embeddings=False),
        config_style="legacy", max_shard_size="150KB"),
]


def init_weights(model, seed):
    """Overwrites every parameter (tied ones once) from a fixed-seed generator."""
    g = torch.Generator().manual_seed(seed)
    tied = model.config.tie_word_embeddings
    with torch.no_grad():
        for name, p in model.named_parameters():  # deterministic order; a tied lm_head is not listed
            shape = p.shape
            if name.endswith("norm.weight"):  # input/post_attention layernorm, final norm, q_norm, k_norm
                scale = 1.0
                if name == "model.norm.weight":
                    head_std = TIED_STD if tied else LM_HEAD_STD
                    scale = LOGIT_STD / (head_std * math.sqrt(shape[0]))
                v = scale * (1.0 + NORM_STD * torch.randn(shape, generator=g))
            elif name.endswith(".bias"):
                v = BIAS_STD * torch.randn(shape, generator=g)
            elif "embed_tokens" in name:
                v = (TIED_STD if tied else EMBED_STD) * torch.randn(shape, generator=g)
            elif name.startswith("lm_head"):
                v = LM_HEAD_STD * torch.randn(shape, generator=g)
            else:  # nn.Linear weight [out_features, in_features]
                v = (LINEAR_GAIN / math.sqrt(shape[1])) * torch.randn(shape, generator=g)
            p.copy_(v)


def rewrite_config(path, case):
    """Records both dtype keys and, for config_style "legacy", the classic rope fields."""
    with open(path) as f:
        cfg = json.load(f)
    cfg["dtype"] = case.dtype
    cfg["torch_dtype"] = case.dtype
    cfg["architectures"] = [FAMILIES[case.family][1].__name__]
    if case.config_style == "legacy":
        rope = dict(cfg.pop("rope_parameters"))
        cfg["rope_theta"] = rope.pop("rope_theta")
        if rope.get("rope_type", "default") != "default":
            cfg["rope_scaling"] = rope
        else:
            cfg["rope_scaling"] = None
    with open(path, "w") as f:
        json.dump(dict(sorted(cfg.items())), f, indent=2)
        f.write("\n")


def load(case_dir, family, dtype):
    cls = FAMILIES[family][1]
    model = cls.from_pretrained(case_dir, dtype=dtype, attn_implementation="eager")
    model.eval()
    return model


def check_loaded_weights_exact(model, case_dir, stored_dtype):
    """The f32 model must hold exactly the rounded values that are in the safetensors file(s)."""
    file_tensors = {}
    for fn in sorted(os.listdir(case_dir)):
        if fn.startswith("model") and fn.endswith(".safetensors"):
            file_tensors.update(load_file(os.path.join(case_dir, fn)))
    sd = model.state_dict()
    for name, t in file_tensors.items():
        assert t.dtype == stored_dtype, (name, t.dtype)
        assert torch.equal(sd[name], t.float()), f"weight {name} differs from file"
    missing = set(sd) - set(file_tensors)
    if model.config.tie_word_embeddings:
        assert missing == {"lm_head.weight"}, missing
        assert torch.equal(sd["lm_head.weight"], sd["model.embed_tokens.weight"])
    else:
        assert not missing, missing
    return file_tensors


def rope_bands(model):
    """For llama3 scaling: which frequency index falls in the high / interpolated / low band."""
    rp = model.config.rope_parameters
    head_dim = model.config.head_dim
    inv = 1.0 / (rp["rope_theta"] ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    wavelen = 2 * math.pi / inv
    old = rp["original_max_position_embeddings"]
    hi_w, lo_w = old / rp["high_freq_factor"], old / rp["low_freq_factor"]
    bands = ["high" if w < hi_w else "low" if w > lo_w else "interp" for w in wavelen.tolist()]
    return bands, wavelen.tolist(), (hi_w, lo_w)


@torch.no_grad()
def greedy(model, prompt, n_new):
    """Greedy continuation, recomputing the whole sequence each step (no cache, no EOS stop)."""
    ids = list(prompt)
    margins = []
    for _ in range(n_new):
        logits = model(torch.tensor([ids])).logits[0, -1].float()
        top = torch.topk(logits, 2)
        margins.append(float(top.values[0] - top.values[1]))
        ids.append(int(top.indices[0]))
    return ids[len(prompt):], margins


def nmse(a, ref):
    return float(((a.double() - ref.double()) ** 2).sum() / (ref.double() ** 2).sum())


def make_case(case):
    case_dir = os.path.join(OUT_ROOT, case.name)
    if os.path.isdir(case_dir):
        shutil.rmtree(case_dir)
    torch.manual_seed(case.seed)
    config_cls, model_cls = FAMILIES[case.family]
    config = config_cls(**case.config)
    model = model_cls(config).eval()
    init_weights(model, case.seed)
    model.to(DTYPES[case.dtype])
    kwargs = {"max_shard_size": case.max_shard_size} if case.max_shard_size else {}
    model.save_pretrained(case_dir, **kwargs)
    rewrite_config(os.path.join(case_dir, "config.json"), case)
    del model

    # Reference model: float32 compute on exactly the stored (rounded) weights.
    ref = load(case_dir, case.family, torch.float32)
    check_loaded_weights_exact(ref, case_dir, DTYPES[case.dtype])
    for key, want in case.config.items():
        if key in ("rope_theta", "rope_scaling"):
            continue
        assert getattr(ref.config, key) == want, (key, getattr(ref.config, key), want)
    rp = ref.config.rope_parameters
    assert rp["rope_theta"] == case.config["rope_theta"], rp
    scaling = case.config.get("rope_scaling")
    if scaling:
        for k, v in scaling.items():
            assert rp[k] == v, (k, rp)
    else:
        assert rp["rope_type"] == "default", rp

    # Prompts: random ids from a fixed seed; the first prompt seed whose greedy continuations are
    # robust (every top1-top2 margin >= MIN_MARGIN, not repetitive) is taken, so a correct engine
    # cannot flip a greedy token through f32 rounding differences.
    vocab = case.config["vocab_size"]
    for attempt in range(MAX_PROMPT_ATTEMPTS):
        g = torch.Generator().manual_seed(case.seed + 500 + attempt)
        prompts = [torch.randint(0, vocab, (n,), generator=g).tolist() for n in PROMPT_LENGTHS]
        greedy_ids, all_margins = [], []
        for p in prompts:
            cont, margins = greedy(ref, p, NEW_TOKENS)
            greedy_ids.append(cont)
            all_margins.append(margins)
        if (min(min(m) for m in all_margins) >= MIN_MARGIN
                and all(len(set(c)) >= MIN_DISTINCT for c in greedy_ids)):
            break
    else:
        raise RuntimeError(f"{case.name}: no robust prompt set in {MAX_PROMPT_ATTEMPTS} attempts")

    tensors, native_nmse = {}, []
    with torch.no_grad():
        for i, p in enumerate(prompts):
            tensors[f"logits.{i}"] = ref(torch.tensor([p])).logits[0].float().contiguous()

    stats = {
        "prompt_attempt": attempt,
        "max_abs_logit": max(float(t.abs().max()) for t in tensors.values()),
        "min_top2_margin": min(min(m) for m in all_margins),
        "median_top2_margin": float(torch.tensor(sum(all_margins, [])).median()),
        "distinct_greedy_tokens": [len(set(c)) for c in greedy_ids],
    }
    if case.dtype != "float32":
        native = load(case_dir, case.family, DTYPES[case.dtype])
        with torch.no_grad():
            for i, p in enumerate(prompts):
                t = native(torch.tensor([p])).logits[0].float().contiguous()
                tensors[f"logits_native.{i}"] = t
                native_nmse.append(nmse(t, tensors[f"logits.{i}"]))
        stats["nmse_native_vs_f32"] = max(native_nmse)
        native_greedy = [greedy(native, p, NEW_TOKENS)[0] for p in prompts]
        stats["native_greedy_agree_prefix"] = [
            next((k for k, (a, b) in enumerate(zip(x, y)) if a != b), NEW_TOKENS)
            for x, y in zip(native_greedy, greedy_ids)]

    parity = {
        "architecture": model_cls.__name__,
        "dtype": case.dtype,
        "prompts": prompts,
        "greedy": greedy_ids,
        "min_top2_margin": round(stats["min_top2_margin"], 6),
    }
    with open(os.path.join(case_dir, "parity.json"), "w") as f:
        f.write(json.dumps(parity, separators=(",", ":")) + "\n")
    save_file(tensors, os.path.join(case_dir, "parity.safetensors"))

    files = sorted(os.listdir(case_dir))
    stats["files"] = files
    stats["size_bytes"] = sum(os.path.getsize(os.path.join(case_dir, f)) for f in files)
    if scaling:
        bands, wavelen, (hi_w, lo_w) = rope_bands(ref)
        assert {"high", "interp", "low"} <= set(bands), bands
        stats["llama3_bands"] = bands
        print(f"  llama3 rope: high-freq wavelen < {hi_w:g}, low-freq wavelen > {lo_w:g}")
        for j, (b, w) in enumerate(zip(bands, wavelen)):
            print(f"    freq {j}: wavelen {w:10.2f}  {b}")
    return stats


def main():
    ap = argparse.ArgumentParser(description="Write the parity fixtures under tests/data/models/.")
    ap.add_argument("cases", nargs="*", help="case names (default: all)")
    args = ap.parse_args()
    names = [c.name for c in CASES]
    unknown = set(args.cases) - set(names)
    if unknown:
        sys.exit(f"unknown case(s) {sorted(unknown)}; known: {names}")
    os.makedirs(OUT_ROOT, exist_ok=True)
    for case in CASES:
        if args.cases and case.name not in args.cases:
            continue
        print(f"== {case.name} ({case.family}, {case.dtype})")
        s = make_case(case)
        print(f"  files: {' '.join(s['files'])}  ({s['size_bytes'] / 1024:.0f} KiB)")
        print(f"  prompt attempt {s['prompt_attempt']}; max|logit| {s['max_abs_logit']:.3f}  min top1-top2 margin {s['min_top2_margin']:.4g}"
              f"  (median {s['median_top2_margin']:.3g})  distinct greedy tokens "
              f"{s['distinct_greedy_tokens']}")
        if "nmse_native_vs_f32" in s:
            print(f"  NMSE native {case.dtype} vs f32-compute logits: {s['nmse_native_vs_f32']:.3g};"
                  f" native greedy agrees for the first {s['native_greedy_agree_prefix']} tokens")


if __name__ == "__main__":
    main()
