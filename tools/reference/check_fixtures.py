# Checks the parity fixtures in tests/data/models/ against the independent numpy forward
# (numpy_forward.py): prompt logits and, by teacher forcing, every greedy token.
#
# Run from the repository root:  /work/refenv/bin/python tools/reference/check_fixtures.py [case ...]
# Exits non-zero when a fixture disagrees with the numpy forward.

import json
import os
import sys

import numpy as np
from safetensors.numpy import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy_forward  # noqa: E402

MODELS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data", "models")
MAX_REL_ERR = 1e-4  # max |numpy - HF f32| / max |HF f32 logit|; HF f32 vs float64 is ~1e-6
MAX_NATIVE_NMSE = {"bfloat16": 5e-3, "float16": 1e-4}


def check(case_dir):
    cfg = numpy_forward.load_config(case_dir)
    weights = numpy_forward.load_weights(case_dir)
    with open(os.path.join(case_dir, "parity.json")) as f:
        parity = json.load(f)
    ref = load_file(os.path.join(case_dir, "parity.safetensors"))
    ok = True
    worst_rel, worst_native = 0.0, 0.0
    for i, (prompt, cont) in enumerate(zip(parity["prompts"], parity["greedy"])):
        seq = prompt + cont
        logits = numpy_forward.forward(cfg, weights, seq[:-1])  # [len-1, vocab]
        hf = ref[f"logits.{i}"].astype(np.float64)
        assert hf.shape == (len(prompt), cfg["vocab_size"]), hf.shape
        rel = np.abs(logits[:len(prompt)] - hf).max() / np.abs(hf).max()
        worst_rel = max(worst_rel, rel)
        # Greedy: the argmax after the prompt and after each generated token is the next token.
        picked = logits[len(prompt) - 1:].argmax(axis=-1).tolist()
        if picked != cont:
            ok = False
            print(f"  prompt {i}: numpy greedy {picked} != fixture {cont}")
        native = f"logits_native.{i}"
        if native in ref:
            n = ref[native].astype(np.float64)
            worst_native = max(worst_native, ((n - hf) ** 2).sum() / (hf ** 2).sum())
    if worst_rel > MAX_REL_ERR:
        ok = False
    line = f"  max rel err numpy vs HF f32-compute logits {worst_rel:.2e}"
    if parity["dtype"] != "float32":
        line += f"; NMSE native vs f32 {worst_native:.2e}"
        if worst_native > MAX_NATIVE_NMSE[parity["dtype"]]:
            ok = False
    print(line + ("" if ok else "  FAILED"))
    return ok


def main():
    cases = sys.argv[1:] or sorted(
        d for d in os.listdir(MODELS) if os.path.exists(os.path.join(MODELS, d, "parity.json")))
    failed = []
    for case in cases:
        print(f"== {case}")
        if not check(os.path.join(MODELS, case)):
            failed.append(case)
    if failed:
        sys.exit(f"FAILED: {failed}")
    print("all fixtures agree with the numpy forward")


if __name__ == "__main__":
    main()
