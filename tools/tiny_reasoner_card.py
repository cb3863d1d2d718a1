# The model card (README.md) of the tiny reasoner, written from train_log.json and the accuracy
# JSON of `experiments.tasks.arith grade`; used by tools/train_tiny_reasoner.py.
from __future__ import annotations

import hashlib
import json
import pathlib
import re
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from experiments.tasks import arith  # noqa: E402

THINK, THINK_END = "<think>", "</think>"


def _pct(x) -> str:
    return f"{100 * x:.1f}%" if isinstance(x, (int, float)) else "—"


def write_card(out: pathlib.Path, log: dict, evals: dict | None) -> None:
    m, d, a = log["model"], log["data"], log["args"]
    ids = log["special_token_ids"]
    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: text-generation",
        "tags: [qwen3, reasoning, arithmetic, tiny, ponder]",
        "---",
        "",
        "# tiny-reasoner",
        "",
        f"A {m['parameters'] / 1e6:.1f} M-parameter `Qwen3ForCausalLM` trained from scratch by "
        "`tools/train_tiny_reasoner.py` on ponder's arithmetic suite (`experiments/tasks/`). It "
        "thinks before it answers, R1-style: step-by-step working inside `<think>…</think>`, then "
        "`\\boxed{answer}`. It exists so that ponder's tests and test-time-scaling experiments run "
        "on a model that reasons; it knows nothing but this arithmetic.",
        "",
        "## Format",
        "",
        "ChatML with a thinking block (`tokenizer_config.json` → `chat_template`). With "
        "`add_generation_prompt` the prompt ends with `<|im_start|>assistant\\n<think>\\n`: the "
        "thinking block is already open and the model writes the working, `\\n</think>\\n\\n`, "
        "the answer and `<|im_end|>`. With `enable_thinking=false` the prompt ends with "
        "`<|im_start|>assistant\\n<think>\\n\\n</think>\\n\\n` and the model answers at once "
        f"(trained on {100 * a['no_think_fraction']:.0f}% of examples; expect low accuracy). "
        "A reasoning parser must start inside the reasoning for thinking prompts "
        "(`starts_in_reasoning`, like DeepSeek-R1). Use no system prompt; the user message is "
        "the question, in the task's canonical form (`What is 47 * 23 + 158?`) or as people type "
        f"it (`What is 47*23+158?`, `Compute 47*23+158.`, `47*23+158=?`: "
        f"{100 * a.get('variant_fraction', 0):.0f}% of the training questions were in such "
        "forms). Give it room: the working of the longest problems runs to ~750 tokens.",
        "",
        "```sh",
        "ponder generate --model models/tiny-reasoner --chat --prompt \"What is 47*23+158?\" "
        "--max-tokens 1024",
        "```",
        "",
        "```",
        "<|im_start|>user",
        "What is 12 + 7 * 8 - 5?<|im_end|>",
        "<|im_start|>assistant",
        "<think>",
        arith.make_problem([12, 7, 8, 5], ["+", "*", "-"], 4).solution,
        "</think>",
        "",
        "\\boxed{63}<|im_end|>",
        "```",
        "",
        "| token | id | special (skipped by skip_special_tokens) |",
        "|---|---|---|",
    ]
    for t, i in ids.items():
        cell = t.replace("|", "\\|")  # a bare | would end the table cell, even in backticks
        lines.append(f"| `{cell}` | {i} | {'no' if t in (THINK, THINK_END) else 'yes'} |")
    lines += [
        "",
        "`eos_token_id` in generation_config.json: `<|im_end|>` and `<|endoftext|>`; padding: "
        f"`<|endoftext|>`. Tokenizer: byte-level BPE with Qwen3's NFC normalizer, pre-tokenizer "
        f"(digits are single tokens) and decoder, trained on the chat-formatted "
        f"text of {a['tokenizer_texts']} train problems; "
        f"{m['vocab_size']} tokens (256 bytes, 5 specials, the rest merges of the task's words and "
        "punctuation; the trainer's limit of 512 is not reached).",
        "",
        "## Data",
        "",
        "Problems from `experiments/tasks/arith.py`, train split only (a question's split is "
        "fixed by a hash of its canonical text, so no validation or test question is ever "
        "trained on, in any surface form), drawn as an endless stream seeded by "
        f"`--seed {a['seed']}`; level weights "
        + ", ".join(f"{k}:{v:g}" for k, v in a["level_weights"].items()) + "; "
        f"{100 * a.get('variant_fraction', 0):.0f}% of the questions reworded "
        "(operators without spaces, `Compute …`, `…=?`; `surface_variant`).",
        "",
        "| level | problems | examples seen |",
        "|---|---|---|",
    ]
    for lv, desc in arith.LEVELS.items():
        lines.append(f"| {lv} | {desc} | {d['examples_per_level'].get(str(lv), 0)} |")
    lines += [
        "",
        f"{d['no_think_examples']} of the examples used the enable_thinking=false prompt. "
        f"{d['tokens']:,} tokens in all ({d['tokens_padded']:,} with padding); loss on the "
        "assistant's tokens only.",
        "",
        "## Model",
        "",
        "| | |",
        "|---|---|",
        f"| parameters | {m['parameters']:,} (embeddings tied) |",
        f"| layers | {m['num_hidden_layers']} |",
        f"| hidden / intermediate | {m['hidden_size']} / {m['intermediate_size']} |",
        f"| attention heads / kv heads / head dim | {m['num_attention_heads']} / "
        f"{m['num_key_value_heads']} / {m['head_dim']} |",
        f"| vocabulary | {m['vocab_size']} |",
        f"| max positions (trained up to) | {m['max_position_embeddings']} ({a['max_len']}) |",
        f"| rope theta | {m['rope_theta']:g} |",
        "| weights | bf16 safetensors |",
        "",
        "## Training",
        "",
        f"`{log['command']}` — AdamW (β 0.9/0.95, weight decay {a['weight_decay']} on matrices), "
        f"peak lr {a['lr']:g} after {a['warmup']} warmup steps, cosine to {a['min_lr']:g}, "
        f"gradient clip {a['clip']}, "
        + (f"{a['stop_after']} steps of a {a['steps']}-step schedule (stopped early on purpose: a "
           "fully trained model leaves test-time compute little to do on the easier levels) "
           if a.get("stop_after", a["steps"]) < a["steps"] else f"{a['steps']} steps ")
        + f"of ≤ {a['batch_tokens']} padded tokens "
        "(length-bucketed), bf16 autocast with fp32 weights, "
        + ("one GPU: " if a.get("device") == "cuda" else f"{a['threads']} CPU thread(s): ")
        + f"{log['train_seconds'] / 60:.1f} min of training "
        + (f"({_cpu_time(log['train_seconds'], log['train_cpu_seconds'], a['threads'])}) "
           if "train_cpu_seconds" in log and a.get("device", "cpu") == "cpu" else "")
        + f"({log['tokens_per_second_padded']:.0f} padded tokens/s), "
        f"{log['total_seconds'] / 60:.1f} min in all. Versions: "
        + ", ".join(f"{k} {v}" for k, v in log["versions"].items()) + "."
        + (f" Machine: {log['machine']}." if log.get("machine") else ""),
        *([ "", log["provenance"]] if log.get("provenance") else []),
        "",
        "| step | train loss | validation loss | lr |",
        "|---|---|---|---|",
    ]
    window = []
    for h in log["history"]:
        window.append(h["loss"])
        if h["step"] % a.get("card_every", 100) == 0 or h is log["history"][-1]:
            val = f"{h['val_loss']:.4f}" if "val_loss" in h else ""
            lines.append(f"| {h['step']} | {sum(window) / len(window):.4f} | {val} "
                         f"| {h['lr']:.2e} |")
            window = []
    lines += ["", "Train loss: mean over the steps since the previous row; validation loss "
              f"(every {a['eval_every']} steps): {a['val_per_level']} validation problems per "
              "level, thinking mode, assistant tokens.", ""]
    lines += ["## Accuracy", ""]
    if evals and evals.get("levels"):
        cols = ["greedy", "pass@1"]
        extra = sorted({k for v in evals["levels"].values() for k in v
                        if k.startswith(("maj@", "pass@")) and k != "pass@1"},
                       key=lambda k: (k.split("@")[0] != "maj", int(k.split("@")[1])))
        cols += extra
        lines += [f"Measured with ponder on the test split (`tests/data/tasks/`): "
                  f"{evals.get('note') or 'settings not recorded'}.", "",
                  "| level | n | " + " | ".join(cols) + " |",
                  "|---|---|" + "---|" * len(cols)]
        for lv in sorted(evals["levels"], key=int):
            v = evals["levels"][lv]
            lines.append(f"| {lv} | {v.get('n', '')} | "
                         + " | ".join(_pct(v.get(c)) for c in cols) + " |")
        lines += test_time_compute_summary(evals["levels"])
    else:
        lines += ["Pending: measured with ponder on the test split (`tests/data/tasks/`), then "
                  "filled in by `tools/train_tiny_reasoner.py --card-only --eval-json FILE`.", "",
                  "| level | n | greedy | pass@1 | maj@16 | pass@16 |", "|---|---|---|---|---|---|"]
        for lv in arith.LEVELS:
            lines.append(f"| {lv} | 300 | — | — | — | — |")
    s = log.get("sanity_eval") or {}
    if s:
        lines += ["", "Sanity check at the end of training, " + s.get("engine", "") + ": greedy "
                  + ", ".join(f"level {lv} {_pct(s[lv]['greedy'])} of {s[lv]['n']}"
                              for lv in sorted(k for k in s if k.isdigit())) + "."]
    rep_path = out / "reproduction.json"
    if rep_path.exists():
        with open(rep_path, encoding="utf-8") as f:
            lines += reproduction_lines(json.load(f), log, evals)
    lines += [
        "",
        "## Reproduce",
        "",
        "```sh",
        "# python: one with torch, transformers and tokenizers (Debian's python3-torch and",
        "# libopenblas0-pthread, plus `pip install transformers tokenizers safetensors`)",
        "python " + re.sub(r"--out \S+", "--out models/tiny-reasoner", log["command"]),
        "cp build/release/bin/ponder /tmp/ponder-eval   # a binary no rebuild replaces meanwhile",
        "PONDER=/tmp/ponder-eval tools/eval_tiny_reasoner.sh models/tiny-reasoner   # "
        "-> eval_results.new.json",
        "python tools/train_tiny_reasoner.py --out models/tiny-reasoner "
        "--card-only --eval-json models/tiny-reasoner/eval_results.new.json",
        "python tools/reference/make_tiny_reasoner_parity.py   "
        "# tests/data/tiny_reasoner_parity/",
        "```",
        "",
    ]
    with open(out / "README.md", "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def test_time_compute_summary(levels: dict, subject: str = "Test-time compute") -> list[str]:
    """What sampling and voting add over one sample, per level, and whether the middle levels
    meet issue #8's target (maj@16 at least 10 points above pass@1)."""
    rows = {lv: v for lv, v in levels.items() if "maj@16" in v and "pass@1" in v}
    if not rows:
        return []
    order = sorted(rows, key=int)
    gain = {lv: 100 * (rows[lv]["maj@16"] - rows[lv]["pass@1"]) for lv in order}
    cover = {lv: 100 * (rows[lv].get("pass@16", rows[lv]["maj@16"]) - rows[lv]["maj@16"])
             for lv in order}
    middle = order[1:-1]
    met = [lv for lv in middle if gain[lv] >= 10]
    lines = ["", f"{subject}: majority voting over 16 samples adds "
             + ", ".join(f"{gain[lv]:+.1f}" for lv in order)
             + " points over pass@1 at levels " + ", ".join(order)
             + "; coverage (pass@16) is a further "
             + ", ".join(f"{cover[lv]:+.1f}" for lv in order) + " points above maj@16. "]
    if middle:
        verdict = ("met" if len(met) == len(middle) else
                   f"met at level(s) {', '.join(met)} only" if met else "not met")
        lines[-1] += (f"Target of issue #8 (maj@16 ≥ pass@1 + 10 points on the middle levels, "
                      f"{', '.join(middle)}): {verdict}.")
    return lines


def _cpu_time(wall_s: float, cpu_s: float, threads: int, name_threads: bool = False) -> str:
    """CPU minutes of a training run, and whether other jobs took part of its cores."""
    shared = "; other jobs shared the cores" if cpu_s < 0.9 * wall_s * threads else ""
    return (f"{cpu_s / 60:.1f} CPU-min" + (f" on {threads} thread(s)" if name_threads else "")
            + shared)


def _final_val_loss(log: dict) -> float:
    return next(h["val_loss"] for h in reversed(log["history"]) if "val_loss" in h)


def _sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def reproduction_record(out: pathlib.Path, run_dir: pathlib.Path, eval_path: str) -> dict:
    """What a from-scratch rerun (RUN_DIR, written by this script) gave: its command, machine
    and time, whether its weights equal the committed ones, and ponder's accuracy on them."""
    with open(run_dir / "train_log.json", encoding="utf-8") as f:
        run = json.load(f)
    with open(eval_path, encoding="utf-8") as f:
        evals = json.load(f)
    return {"created": run["created"], "command": run["command"],
            "machine": run.get("machine", ""), "versions": run["versions"],
            "train_seconds": run["train_seconds"], "total_seconds": run["total_seconds"],
            "train_cpu_seconds": run.get("train_cpu_seconds"),
            "threads": run["args"]["threads"],
            "weights_identical": _sha256(run_dir / "model.safetensors")
            == _sha256(out / "model.safetensors"),
            "final_val_loss": _final_val_loss(run),
            "eval": evals}


def reproduction_lines(rep: dict, log: dict, evals: dict | None) -> list[str]:
    """The card's account of the rerun: time, machine, identical weights or not, and its
    accuracy beside the committed model's."""
    mins = rep["total_seconds"] / 60
    lines = ["", "## Reproduction", "",
             f"`{rep['command']}` from scratch ({rep['created'][:10]}, machine: "
             f"{rep['machine'] or 'not recorded'}; "
             + ", ".join(f"{k} {v}" for k, v in rep["versions"].items())
             + f"): {rep['train_seconds'] / 60:.1f} min of training"
             + (" (" + _cpu_time(rep["train_seconds"], rep["train_cpu_seconds"], rep["threads"],
                                 name_threads=True) + ")"
                if rep.get("train_cpu_seconds") else "")
             + f", {mins:.1f} min in all. "]
    if rep["weights_identical"]:
        lines[-1] += "It wrote a model.safetensors identical to the committed one."
        return lines
    lines[-1] += ("Its weights differ from the committed ones (float kernels differ across CPUs "
                  "and library builds, so runs are bit-identical only on the same kind of "
                  "machine). ponder measured the rerun on the same test split "
                  f"({rep['eval'].get('note', '')}); final validation loss "
                  f"{rep['final_val_loss']:.4f} (committed: {_final_val_loss(log):.4f}).")
    cols = [c for c in ("greedy", "pass@1", "maj@16", "pass@16")
            if all(c in v for v in rep["eval"]["levels"].values())]
    ours = (evals or {}).get("levels", {})
    lines += ["", "| level | n | " + " | ".join(f"{c} rerun (committed)" for c in cols) + " |",
              "|---|---|" + "---|" * len(cols)]
    for lv in sorted(rep["eval"]["levels"], key=int):
        v, c0 = rep["eval"]["levels"][lv], ours.get(lv, {})
        lines.append(f"| {lv} | {v.get('n', '')} | "
                     + " | ".join(f"{_pct(v.get(c))} ({_pct(c0.get(c))})" for c in cols) + " |")
    return lines + test_time_compute_summary(rep["eval"]["levels"],
                                             "Test-time compute in the rerun")


def card_only(args, out: pathlib.Path) -> None:
    with open(out / "train_log.json", encoding="utf-8") as f:
        log = json.load(f)
    if args.reproduction:
        rep = reproduction_record(out, pathlib.Path(args.reproduction),
                                  args.reproduction_eval_json)
        with open(out / "reproduction.json", "w", encoding="utf-8") as f:
            json.dump(rep, f, indent=2)
            f.write("\n")
    evals = None
    if args.eval_json:
        with open(args.eval_json, encoding="utf-8") as f:
            evals = json.load(f)
        with open(out / "eval_results.json", "w", encoding="utf-8") as f:
            json.dump(evals, f, indent=2)
            f.write("\n")
    elif (out / "eval_results.json").exists():
        with open(out / "eval_results.json", encoding="utf-8") as f:
            evals = json.load(f)
    write_card(out, log, evals)
    print(f"wrote {out / 'README.md'}")


# ---------------------------------------------------------------------------------------------
