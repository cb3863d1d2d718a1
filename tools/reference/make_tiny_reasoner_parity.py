# Writes the parity fixture of the bundled tiny reasoner (tests/data/tiny_reasoner_parity/):
# for 100 chat prompts, the token ids transformers' tokenizer and chat template make, the greedy
# continuation of transformers' Qwen3ForCausalLM on the committed bf16 weights computed in f32,
# and its logits at three positions of each. tests/worker/tiny_reasoner_parity_test.cpp runs
# ponder on the same prompts and requires the same ids, the same greedy tokens and the logits
# within f32 tolerance.
#
# Run from the repository root whenever models/tiny-reasoner changes (deterministic: one torch
# thread, eager attention; about a minute):
#   /work/refenv/bin/python tools/reference/make_tiny_reasoner_parity.py
#
# Prompts: the first 19 test problems of each level (tests/data/tasks/arith_test_l{1..5}.jsonl)
# whose greedy path has no near tie (a problem with one is replaced by the next of its level) and
# 5 questions in other surface forms ("What is 47*23+158?", ...), each the single user message
# of the chat template with add_generation_prompt (the thinking block open).
# Files (format in tests/data/tiny_reasoner_parity/README.md): parity.json, parity.safetensors.

import argparse
import hashlib
import json
import os
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer, Qwen3ForCausalLM
from transformers.utils import logging as hf_logging

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)
hf_logging.disable_progress_bar()

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PER_LEVEL = 19
EXTRA_QUESTIONS = ["What is 47*23+158?", "Compute 12+7*8-5.", "308*7-95=?",
                   "What's 4821+937?", "Evaluate 90 - 66*3 + 9."]
MIN_MARGIN = 1e-3  # smallest top1-top2 logit gap accepted at a greedy step


def prompt_groups(tasks_dir):
    """(how many to take, candidates in order) per group: PER_LEVEL of each level's test
    problems, then every extra question."""
    groups = []
    level = 1
    while os.path.exists(os.path.join(tasks_dir, f"arith_test_l{level}.jsonl")):
        with open(os.path.join(tasks_dir, f"arith_test_l{level}.jsonl"), encoding="utf-8") as f:
            records = [json.loads(line) for line in f if line.strip()]
        groups.append((PER_LEVEL, [{"id": r["id"], "question": r["question"]} for r in records]))
        level += 1
    groups.append((len(EXTRA_QUESTIONS),
                   [{"id": f"surface-{i}", "question": q} for i, q in enumerate(EXTRA_QUESTIONS)]))
    return groups


def check_weights(model, model_dir):
    """The f32 model holds exactly the bf16 values of the file (tied lm_head = embedding)."""
    stored = load_file(os.path.join(model_dir, "model.safetensors"))
    state = model.state_dict()
    for name, t in stored.items():
        assert t.dtype == torch.bfloat16, (name, t.dtype)
        assert torch.equal(state[name], t.float()), f"weight {name} differs from the file"
    assert set(state) - set(stored) <= {"lm_head.weight"}, set(state) - set(stored)


@torch.no_grad()
def greedy(model, prompt, eos, max_positions):
    """Greedy continuation with the KV cache, up to and including an EOS token."""
    out = model(torch.tensor([prompt]), use_cache=True)
    past, ids = out.past_key_values, []
    logits = out.logits[0, -1]
    while len(prompt) + len(ids) < max_positions:
        token = int(torch.argmax(logits))
        ids.append(token)
        if token in eos:
            break
        out = model(torch.tensor([[token]]), past_key_values=past, use_cache=True)
        past, logits = out.past_key_values, out.logits[0, -1]
    return ids


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default=os.path.join(REPO, "models", "tiny-reasoner"))
    ap.add_argument("--tasks", default=os.path.join(REPO, "tests", "data", "tasks"))
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "data", "tiny_reasoner_parity"))
    args = ap.parse_args()

    tok = AutoTokenizer.from_pretrained(args.model)
    model = Qwen3ForCausalLM.from_pretrained(args.model, dtype=torch.float32,
                                             attn_implementation="eager").eval()
    check_weights(model, args.model)
    with open(os.path.join(args.model, "generation_config.json"), encoding="utf-8") as f:
        eos = json.load(f)["eos_token_id"]
    eos = eos if isinstance(eos, list) else [eos]
    max_positions = model.config.max_position_embeddings

    def reference(p):
        """The prompt's ids, greedy continuation, logits at three positions and its smallest
        top1-top2 gap."""
        text = tok.apply_chat_template([{"role": "user", "content": p["question"]}],
                                       tokenize=False, add_generation_prompt=True)
        prompt = tok(text, add_special_tokens=False)["input_ids"]
        cont = greedy(model, prompt, eos, max_positions)
        # One uncached forward pass over the whole sequence: its argmax must give the same
        # tokens, and its top1-top2 gaps say how robust the greedy choices are.
        with torch.no_grad():
            logits = model(torch.tensor([prompt + cont])).logits[0].float()
        steps = logits[len(prompt) - 1:len(prompt) - 1 + len(cont)]
        assert steps.argmax(-1).tolist() == cont, f"{p['id']}: cached and uncached greedy differ"
        top2 = torch.topk(steps, 2, dim=-1).values
        margin = float((top2[:, 0] - top2[:, 1]).min())
        first = len(prompt) - 1
        positions = sorted({first, first + len(cont) // 2, first + len(cont) - 1})
        completion = tok.decode(cont, skip_special_tokens=True)
        record = {"id": p["id"], "question": p["question"], "prompt": prompt,
                  "greedy": cont, "logit_positions": positions,
                  "finished": cont[-1] in eos, "min_top2_margin": round(margin, 6),
                  "completion_tail": completion[-24:]}
        return record, logits[positions].contiguous(), margin

    # A prompt whose greedy path passes a near tie (gap < MIN_MARGIN) could flip on rounding
    # alone: the next problem of its level takes its place.
    records, tensors, margins, skipped = [], {}, [], []
    for want, candidates in prompt_groups(args.tasks):
        taken = 0
        for p in candidates:
            if taken == want:
                break
            record, logits, margin = reference(p)
            i = len(records)
            print(f"{i:3d} {p['id']:22s} {len(record['prompt']):3d}+{len(record['greedy']):3d} "
                  f"tokens  margin {margin:.4f}  …{record['completion_tail']!r}", flush=True)
            if margin < MIN_MARGIN:
                skipped.append(p["id"])
                print(f"    skipped: a greedy step is within {MIN_MARGIN} of a tie", flush=True)
                continue
            records.append(record)
            tensors[f"logits.{i}"] = logits
            margins.append(margin)
            taken += 1
        if taken < want:
            sys.exit(f"only {taken} of {want} prompts of a group are clear of ties ({skipped})")
    with open(os.path.join(args.model, "model.safetensors"), "rb") as f:
        weights_sha = hashlib.sha256(f.read()).hexdigest()
    meta = {
        "model": os.path.relpath(os.path.abspath(args.model), REPO),
        "model_safetensors_sha256": weights_sha,
        "reference": "transformers Qwen3ForCausalLM, f32 compute on the bf16 weights, eager "
                     "attention, KV-cached greedy decoding",
        "eos_token_ids": eos,
        "vocab_size": model.config.vocab_size,
        "min_top2_margin": round(min(margins), 6),
        "skipped_near_ties": skipped,
        "prompts": records,
    }
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "parity.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, separators=(",", ":"))
        f.write("\n")
    save_file(tensors, os.path.join(args.out, "parity.safetensors"))
    n_tokens = sum(len(r["greedy"]) for r in records)
    print(f"wrote {args.out}: {len(records)} prompts, {n_tokens} greedy tokens, "
          f"{sum(r['finished'] for r in records)} finished with EOS, "
          f"min top1-top2 margin {min(margins):.4f}")


if __name__ == "__main__":
    main()
