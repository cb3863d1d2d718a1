#!/usr/bin/env python3
# Trains ponder's bundled tiny reasoning model (models/tiny-reasoner/) from scratch on the CPU:
# arithmetic problems with worked <think> solutions, byte-level BPE, Qwen3ForCausalLM, bf16.
"""Train the tiny reasoner, or rewrite its model card.

  # the full run (default settings: 1500 steps of a 2000-step schedule, 5.8 M padded tokens;
  # 28 min at 3,400 tokens/s on one core of the VM that trained the committed model, 2,200
  # tokens/s on one core and 4,000 on two of another VM of the same kind):
  /work/refenv/bin/python tools/train_tiny_reasoner.py --out models/tiny-reasoner --threads 1

  # a smoke run: a few dozen steps, 1 thread, into a scratch folder
  /work/refenv/bin/python tools/train_tiny_reasoner.py --out /tmp/tr-smoke --steps 40 \\
      --threads 1 --sanity-eval 4

  # after measuring accuracy with ponder (python3 -m experiments.tasks.arith grade ... --out e.json)
  /work/refenv/bin/python tools/train_tiny_reasoner.py --out models/tiny-reasoner --card-only \\
      --eval-json e.json

What it does, deterministically from --seed (bit-identical on the same machine, thread count and
library versions):
  1. draws train-split problems from experiments/tasks/arith.py (an endless stream; no
     validation or test question can appear) and trains a byte-level BPE on their text with the
     `tokenizers` library (Qwen2/3 pre-tokenizer: digits are always single tokens);
  2. renders each problem with the model's own chat template: prompt
     "<|im_start|>user\\n{question}<|im_end|>\\n<|im_start|>assistant\\n<think>\\n", completion
     "{working}\\n</think>\\n\\n\\\\boxed{answer}<|im_end|>" (a share of examples use the
     enable_thinking=false prompt, whose completion is only "\\\\boxed{answer}<|im_end|>"); loss on
     completion tokens only;
  3. trains a Qwen3ForCausalLM (bf16 autocast, fp32 master weights) with AdamW, linear warmup
     and cosine decay, on length-bucketed batches of about --batch-tokens padded tokens;
  4. writes config.json, model.safetensors (bf16), generation_config.json, tokenizer.json,
     tokenizer_config.json (with the chat template), train_log.json and README.md (model card)
     to --out, after a greedy sanity check with transformers on validation problems.

The accuracy table of the card is filled from --eval-json (kept as eval_results.json in the
model folder), which must come from ponder itself; the sanity check is only a smoke signal.
--card-only --reproduction RUN_DIR --reproduction-eval-json FILE records a from-scratch rerun
(reproduction.json in the model folder, and a section of the card): its time, machine, whether
its weights are identical, and ponder's accuracy on them.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import pathlib
import platform
import random
import re
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from experiments.tasks import arith  # noqa: E402
from tiny_reasoner_card import card_only, write_card  # noqa: E402  (tools/ is on sys.path)

# ---------------------------------------------------------------------------------------------
# Model, tokenizer and chat format

MODEL_CONFIG = dict(  # 2.5 M parameters with the ~310-token vocabulary (embeddings tied)
    hidden_size=192,
    intermediate_size=512,
    num_hidden_layers=6,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=48,
    max_position_embeddings=1024,
    rms_norm_eps=1e-6,
    rope_theta=10000.0,
)

VOCAB_TARGET = 512  # BPE trainer limit; the task text runs out of merges before it (see card)
ENDOFTEXT, IM_START, IM_END, THINK, THINK_END = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>")
SPECIAL_TOKENS = [ENDOFTEXT, IM_START, IM_END, THINK, THINK_END]  # ids 0-4, in this order
# Qwen2/Qwen3's pre-tokenizer split: contractions, letter runs, single digits, punctuation runs,
# newlines, spaces.
PRETOKENIZE_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
                     r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

# ChatML; the generation prompt opens the thinking block ("<think>\n") unless
# enable_thinking=false, which closes an empty one ("<think>\n\n</think>\n\n") as Qwen3 does.
# Assistant turns after the last user message keep their reasoning (from reasoning_content or
# from "<think>...</think>" in content); earlier ones are rendered without it.
CHAT_TEMPLATE = """\
{%- if messages[0].role == 'system' %}
    {{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}
{%- endif %}
{%- set ns = namespace(last_user=-1) %}
{%- for message in messages %}
    {%- if message.role == 'user' %}
        {%- set ns.last_user = loop.index0 %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if message.role == 'assistant' %}
        {%- set content = message.content if message.content is string else '' %}
        {%- set reasoning = '' %}
        {%- if message.reasoning_content is defined and message.reasoning_content is string %}
            {%- set reasoning = message.reasoning_content %}
        {%- elif '</think>' in content %}
            {%- set reasoning = content.split('</think>')[0].split('<think>')[-1] %}
            {%- set content = content.split('</think>')[-1] %}
        {%- endif %}
        {%- if loop.index0 > ns.last_user and (loop.last or reasoning) %}
            {{- '<|im_start|>assistant\\n<think>\\n' + reasoning.strip('\\n') + '\\n</think>\\n\\n' }}
            {{- content.lstrip('\\n') }}
        {%- else %}
            {{- '<|im_start|>assistant\\n' + content.lstrip('\\n') }}
        {%- endif %}
        {{- '<|im_end|>\\n' }}
    {%- elif not (loop.first and message.role == 'system') %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\\n\\n</think>\\n\\n' }}
    {%- else %}
        {{- '<think>\\n' }}
    {%- endif %}
{%- endif %}
"""


def completion_text(p: arith.Problem, thinking: bool) -> str:
    """What the model is trained to write after the generation prompt."""
    answer = f"\\boxed{{{p.answer}}}{IM_END}"
    return f"{p.solution}\n{THINK_END}\n\n{answer}" if thinking else answer


def tokenizer_corpus(n: int, seed: int, variants: float):
    """The text between special tokens of n chat-formatted train problems (thinking and not, a
    share `variants` in other surface forms), i.e. exactly the pieces the pre-tokenizer sees at
    encoding time."""
    stream = arith.train_stream(seed=seed + 1, variants=variants)
    specials = re.compile("|".join(re.escape(t) for t in SPECIAL_TOKENS))
    for i in range(n):
        p = next(stream)
        text = (f"{IM_START}user\n{p.question}{IM_END}\n{IM_START}assistant\n"
                + (f"{THINK}\n" if i % 10 else f"{THINK}\n\n{THINK_END}\n\n")
                + completion_text(p, thinking=i % 10 != 0) + "\n")
        yield from (piece for piece in specials.split(text) if piece)


def train_tokenizer(n_texts: int, seed: int, variants: float):
    """Byte-level BPE (Qwen3's normalizer, pre-tokenizer and decoder) trained on task text; the
    special tokens take ids 0-4; <think> and </think> are added tokens that are not special (they
    survive skip_special_tokens, as in Qwen3)."""
    from tokenizers import (Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers,
                            processors, trainers)

    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False,
                                              use_regex=False)
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_TARGET, min_frequency=2,
                                  special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(tokenizer_corpus(n_texts, seed, variants), trainer=trainer)
    spec = json.loads(tok.to_str())
    for added in spec["added_tokens"]:
        if added["content"] in (THINK, THINK_END):
            added["special"] = False
    tok = Tokenizer.from_str(json.dumps(spec))
    for i, t in enumerate(SPECIAL_TOKENS):
        assert tok.token_to_id(t) == i, (t, tok.token_to_id(t))
    return tok


def tokenizer_config() -> dict:
    added = {str(i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                      "single_word": False, "special": t not in (THINK, THINK_END)}
             for i, t in enumerate(SPECIAL_TOKENS)}
    return {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": added,
        "additional_special_tokens": [IM_START, IM_END],
        "bos_token": None,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": IM_END,
        "errors": "replace",
        "model_max_length": MODEL_CONFIG["max_position_embeddings"],
        "pad_token": ENDOFTEXT,
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }


def write_tokenizer(tok, out: pathlib.Path) -> None:
    tok.save(str(out / "tokenizer.json"))
    with open(out / "tokenizer_config.json", "w", encoding="utf-8") as f:
        json.dump(tokenizer_config(), f, indent=2, ensure_ascii=False)
        f.write("\n")


class ChatFormat:
    """Prompt texts cut from the chat template itself (rendered around a placeholder), checked
    against full renderings of whole conversations."""

    def __init__(self, hf_tokenizer):
        self.hf = hf_tokenizer
        marker = "\u0000QUESTION\u0000"
        self.parts = {}
        for thinking in (True, False):
            text = hf_tokenizer.apply_chat_template(
                [{"role": "user", "content": marker}], tokenize=False,
                add_generation_prompt=True, enable_thinking=thinking)
            self.parts[thinking] = tuple(text.split(marker))

    def prompt(self, question: str, thinking: bool) -> str:
        before, after = self.parts[thinking]
        return before + question + after

    def check(self, problems) -> None:
        for i, p in enumerate(problems):
            thinking = i % 2 == 0
            content = (f"{THINK}\n{p.solution}\n{THINK_END}\n\n\\boxed{{{p.answer}}}" if thinking
                       else f"\\boxed{{{p.answer}}}")
            whole = self.hf.apply_chat_template(
                [{"role": "user", "content": p.question},
                 {"role": "assistant", "content": content}], tokenize=False)
            mine = self.prompt(p.question, thinking) + completion_text(p, thinking) + "\n"
            assert whole == mine, (whole, mine)


def load_hf_tokenizer(folder: pathlib.Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))


# ---------------------------------------------------------------------------------------------
# Data


class Batches:
    """Endless length-bucketed batches from the train stream: a pool of examples is sorted by
    length and cut into batches of at most `batch_tokens` padded tokens, which are shuffled.
    (Examples are similar in length within a batch, so batches are mostly of one level, and the
    short enable_thinking=false examples make about one batch of their own per pool.)"""

    def __init__(self, fmt: ChatFormat, tok, args):
        self.fmt, self.tok, self.args = fmt, tok, args
        self.stream = arith.train_stream(seed=args.seed, weights=args.level_weights,
                                         variants=args.variant_fraction)
        self.rng = random.Random(f"batches/{args.seed}")
        self.pending: list = []
        self.seen = {lv: 0 for lv in arith.LEVELS}
        self.seen_no_think = 0
        self.tokens_real = 0
        self.dropped = 0

    def encode(self, problems, thinking_flags):
        prompts = [self.fmt.prompt(p.question, t) for p, t in zip(problems, thinking_flags)]
        comps = [completion_text(p, t) for p, t in zip(problems, thinking_flags)]
        ep = self.tok.encode_batch(prompts, add_special_tokens=False)
        ec = self.tok.encode_batch(comps, add_special_tokens=False)
        return [(a.ids, b.ids) for a, b in zip(ep, ec)]

    def _fill(self):
        a = self.args
        pool = int(a.pool_batches * a.batch_tokens / 200) + 1
        problems = [next(self.stream) for _ in range(pool)]
        flags = [self.rng.random() >= a.no_think_fraction for _ in problems]
        examples = []
        for p, t, (pi, ci) in zip(problems, flags, self.encode(problems, flags)):
            if len(pi) + len(ci) > a.max_len:
                self.dropped += 1
                continue
            examples.append((pi, ci, p.difficulty, t))
        examples.sort(key=lambda e: len(e[0]) + len(e[1]))
        batches, cur = [], []
        for e in examples:
            n = len(e[0]) + len(e[1])
            if cur and (len(cur) + 1) * n > a.batch_tokens:
                batches.append(cur)
                cur = []
            cur.append(e)
        batches.append(cur)  # the longest examples, a partial batch
        self.rng.shuffle(batches)
        self.pending = batches

    def next(self):
        import torch

        while not self.pending:
            self._fill()
        batch = self.pending.pop()
        width = max(len(p) + len(c) for p, c, _, _ in batch)
        ids = torch.full((len(batch), width), 0, dtype=torch.long)  # <|endoftext|> as padding
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        for row, (p, c, level, thinking) in enumerate(batch):
            seq = p + c
            ids[row, :len(seq)] = torch.tensor(seq)
            labels[row, len(p):len(seq)] = torch.tensor(c)
            self.seen[level] += 1
            self.seen_no_think += not thinking
            self.tokens_real += len(seq)
        return ids, labels


def validation_batches(fmt: ChatFormat, tok, n_per_level: int, max_batch: int = 32):
    import torch

    problems = [p for lv in arith.LEVELS for p in arith.make_split("validation", lv, n_per_level)]
    encoded = []
    for p in problems:
        pi = tok.encode(fmt.prompt(p.question, True), add_special_tokens=False).ids
        ci = tok.encode(completion_text(p, True), add_special_tokens=False).ids
        encoded.append((pi, ci))
    out = []
    for i in range(0, len(encoded), max_batch):
        chunk = encoded[i:i + max_batch]
        width = max(len(p) + len(c) for p, c in chunk)
        ids = torch.zeros((len(chunk), width), dtype=torch.long)
        labels = torch.full((len(chunk), width), -100, dtype=torch.long)
        for row, (p, c) in enumerate(chunk):
            ids[row, :len(p) + len(c)] = torch.tensor(p + c)
            labels[row, len(p):len(p) + len(c)] = torch.tensor(c)
        out.append((ids, labels))
    return out


# ---------------------------------------------------------------------------------------------
# Training


def model_config(args) -> dict:
    """MODEL_CONFIG with the shape options of the command line applied."""
    c = dict(MODEL_CONFIG)
    for key, value in (("num_hidden_layers", args.layers), ("hidden_size", args.hidden),
                       ("intermediate_size", args.intermediate),
                       ("num_attention_heads", args.heads),
                       ("num_key_value_heads", args.kv_heads), ("head_dim", args.head_dim)):
        if value is not None:
            c[key] = value
    return c


def build_model(vocab_size: int, seed: int, shape: dict):
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    c = dict(shape)
    rope_theta = c.pop("rope_theta")
    config = Qwen3Config(
        vocab_size=vocab_size, tie_word_embeddings=True, max_window_layers=c["num_hidden_layers"],
        rope_parameters={"rope_type": "default", "rope_theta": rope_theta},
        bos_token_id=SPECIAL_TOKENS.index(ENDOFTEXT), eos_token_id=SPECIAL_TOKENS.index(IM_END),
        pad_token_id=SPECIAL_TOKENS.index(ENDOFTEXT), **c)
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(config)
    model.config.architectures = ["Qwen3ForCausalLM"]
    return model


def lr_at(step: int, args) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.min_lr + 0.5 * (args.lr - args.min_lr) * (1 + math.cos(math.pi * progress))


def evaluate_loss(model, batches, device) -> float:
    import torch

    total, count = 0.0, 0
    model.eval()
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16):
        for ids, labels in batches:
            n = int((labels[:, 1:] != -100).sum())
            total += float(model(input_ids=ids.to(device), labels=labels.to(device)).loss) * n
            count += n
    model.train()
    return total / count


def save_checkpoint(model, out: pathlib.Path, step: int) -> None:
    """An intermediate model folder out/checkpoints/step-N that ponder can load (bf16 weights,
    tokenizer, generation config), for looking at accuracy along the way."""
    import copy
    import shutil

    import torch

    folder = out / "checkpoints" / f"step-{step}"
    folder.mkdir(parents=True, exist_ok=True)
    snapshot = copy.deepcopy(model).to(torch.bfloat16)
    snapshot.config.dtype = "bfloat16"
    snapshot.save_pretrained(str(folder), safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(out / name, folder / name)
    write_generation_config(folder)


def train(args, out: pathlib.Path) -> dict:
    import torch
    import tokenizers
    import transformers

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: torch sees no CUDA device")
        torch.backends.cuda.matmul.allow_tf32 = False
    random.seed(args.seed)
    t_start = time.time()

    out.mkdir(parents=True, exist_ok=True)
    tok = train_tokenizer(args.tokenizer_texts, args.seed, args.variant_fraction)
    write_tokenizer(tok, out)
    hf_tok = load_hf_tokenizer(out)
    fmt = ChatFormat(hf_tok)
    fmt.check(arith.make_split("validation", 4, 4) + arith.make_split("validation", 2, 4))
    vocab_size = tok.get_vocab_size()
    print(f"tokenizer: {vocab_size} tokens ({time.time() - t_start:.1f} s)", flush=True)

    shape = model_config(args)
    model = build_model(vocab_size, args.seed, shape).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params / 1e6:.2f} M parameters", flush=True)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    data = Batches(fmt, tok, args)
    val = validation_batches(fmt, tok, args.val_per_level)

    history, window, tokens_padded = [], [], 0
    t_train = t_window = time.time()  # s/step is measured per log window, evaluation included
    cpu_train = time.process_time()
    model.train()
    for step in range(args.stop_after):
        lr = lr_at(step, args)
        for group in opt.param_groups:
            group["lr"] = lr
        ids, labels = data.next()
        tokens_padded += ids.numel()
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = model(input_ids=ids.to(device), labels=labels.to(device)).loss
        loss.backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip))
        opt.step()
        opt.zero_grad(set_to_none=True)
        window.append(float(loss.detach()))
        last = step + 1 == args.stop_after
        if (step + 1) % args.log_every == 0 or last:
            elapsed = time.time() - t_train
            entry = {"step": step + 1, "loss": sum(window) / len(window), "lr": lr,
                     "grad_norm": grad_norm, "tokens": data.tokens_real, "elapsed_s": elapsed}
            window = []
            if (step + 1) % args.eval_every == 0 or last:
                entry["val_loss"] = evaluate_loss(model, val, device)
            history.append(entry)
            now = time.time()
            prev_step = history[-2]["step"] if len(history) > 1 else 0
            step_s = (now - t_window) / (step + 1 - prev_step)
            t_window = now
            eta = (args.stop_after - step - 1) * elapsed / (step + 1)
            if args.save_every and (step + 1) % args.save_every == 0 and not last:
                save_checkpoint(model, out, step + 1)
            print(f"step {step + 1:5d}/{args.stop_after}  loss {entry['loss']:.4f}"
                  + (f"  val {entry['val_loss']:.4f}" if "val_loss" in entry else "")
                  + f"  lr {lr:.2e}  |g| {grad_norm:.2f}  {tokens_padded / elapsed:.0f} tok/s"
                  f"  {step_s:.2f} s/step  eta {eta / 60:.1f} min", flush=True)
    train_s = time.time() - t_train
    train_cpu_s = time.process_time() - cpu_train

    sanity = (sanity_eval(model, hf_tok, args.sanity_eval, args.max_len, device)
              if args.sanity_eval else {})
    model = model.to("cpu", torch.bfloat16)
    model.config.dtype = "bfloat16"
    model.save_pretrained(str(out), safe_serialization=True)
    write_generation_config(out)

    log = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "tools/train_tiny_reasoner.py " + " ".join(args.argv),
        "args": {k: v for k, v in vars(args).items() if k not in ("argv", "eval_json")},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "tokenizers": tokenizers.__version__, "python": sys.version.split()[0]},
        "machine": machine_description()
        + (f"; GPU: {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""),
        "model": {"parameters": n_params, "vocab_size": vocab_size, **shape},
        "special_token_ids": {t: i for i, t in enumerate(SPECIAL_TOKENS)},
        "data": {"examples_per_level": {str(k): v for k, v in data.seen.items()},
                 "no_think_examples": data.seen_no_think, "tokens": data.tokens_real,
                 "tokens_padded": tokens_padded, "dropped_too_long": data.dropped},
        "train_seconds": train_s,
        "train_cpu_seconds": train_cpu_s,
        "total_seconds": time.time() - t_start,
        "tokens_per_second_padded": tokens_padded / train_s,
        "steps_per_second": args.stop_after / train_s,
        "history": history,
        "sanity_eval": sanity,
    }
    with open(out / "train_log.json", "w", encoding="utf-8") as f:
        json.dump(log, f, indent=1)
        f.write("\n")
    return log


def machine_description() -> str:
    """The CPU the run trained on: float kernels (and so the exact weights) depend on its vector
    extensions, so bit-identical reruns need the same kind of CPU."""
    name, flags = platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    name = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    isa = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{name}, {os.cpu_count()} cores" + (f" ({' '.join(isa)})" if isa else "")


def write_generation_config(out: pathlib.Path) -> None:
    gen = {
        "bos_token_id": SPECIAL_TOKENS.index(ENDOFTEXT),
        "eos_token_id": [SPECIAL_TOKENS.index(IM_END), SPECIAL_TOKENS.index(ENDOFTEXT)],
        "pad_token_id": SPECIAL_TOKENS.index(ENDOFTEXT),
        "do_sample": True,
        "temperature": 0.8,
        "top_p": 1.0,
        "top_k": 0,
        "max_new_tokens": 1024,
    }
    with open(out / "generation_config.json", "w", encoding="utf-8") as f:
        json.dump(gen, f, indent=2)
        f.write("\n")


def sanity_eval(model, hf_tok, n_per_level: int, max_new_tokens: int, device) -> dict:
    """Greedy accuracy with transformers on validation problems (a smoke signal only)."""
    import torch

    model.eval()
    hf_tok.padding_side = "left"
    result = {}
    t0 = time.time()
    for lv in arith.LEVELS:
        problems = arith.make_split("validation", lv, n_per_level)
        prompts = [hf_tok.apply_chat_template([{"role": "user", "content": p.question}],
                                              tokenize=False, add_generation_prompt=True)
                   for p in problems]
        enc = hf_tok(prompts, return_tensors="pt", padding=True,
                     add_special_tokens=False).to(device)
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16):
            gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 eos_token_id=SPECIAL_TOKENS.index(IM_END),
                                 pad_token_id=SPECIAL_TOKENS.index(ENDOFTEXT))
        texts = hf_tok.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        correct = sum(arith.is_correct(t, p.answer) for t, p in zip(texts, problems))
        result[str(lv)] = {"n": len(problems), "greedy": correct / len(problems)}
        print(f"sanity eval level {lv}: {correct}/{len(problems)} greedy correct"
              f"  e.g. {problems[0].question!r} -> {texts[0][-40:]!r}", flush=True)
    result["engine"] = (f"transformers' generate (bf16 autocast, {device.type.upper()}) "
                        "on validation problems")
    result["seconds"] = time.time() - t0
    model.train()
    return result


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(REPO / "models" / "tiny-reasoner"))
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                   help="where to train (cuda: one GPU; the weights then differ from a CPU run's)")
    p.add_argument("--steps", type=int, default=2000,
                   help="length of the learning-rate schedule (warmup + cosine decay)")
    p.add_argument("--stop-after", type=int, default=1500,
                   help="steps actually trained (default 1500 of the 2000-step schedule: the "
                        "bundled model is deliberately under-trained, so that sampling and "
                        "majority voting have room to help on every level)")
    p.add_argument("--batch-tokens", type=int, default=4096, help="padded tokens per step")
    p.add_argument("--max-len", type=int, default=896, help="longest example, in tokens")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--min-lr", type=float, default=1e-4)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--no-think-fraction", type=float, default=0.1)
    p.add_argument("--variant-fraction", type=float, default=0.3,
                   help="share of training questions in another surface form (47*23+158, ...)")
    for flag, key in (("--layers", "num_hidden_layers"), ("--hidden", "hidden_size"),
                      ("--intermediate", "intermediate_size"), ("--heads", "num_attention_heads"),
                      ("--kv-heads", "num_key_value_heads"), ("--head-dim", "head_dim")):
        p.add_argument(flag, type=int, default=None,
                       help=f"model shape: {key} (default {MODEL_CONFIG[key]})")
    p.add_argument("--level-weights", default="1:0.8,2:0.6,3:1.2,4:1.2,5:0.8",
                   help="level:weight,... for drawing training problems")
    p.add_argument("--tokenizer-texts", type=int, default=20000)
    p.add_argument("--pool-batches", type=int, default=32, help="batches per bucketing pool")
    p.add_argument("--val-per-level", type=int, default=30)
    p.add_argument("--save-every", type=int, default=0,
                   help="steps between intermediate checkpoints in OUT/checkpoints (0: none)")
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--card-every", type=int, default=100, help="steps between loss table rows")
    p.add_argument("--sanity-eval", type=int, default=20,
                   help="validation problems per level for the greedy check (0: none)")
    p.add_argument("--card-only", action="store_true",
                   help="only rewrite README.md from train_log.json (+ --eval-json)")
    p.add_argument("--eval-json", help="accuracy JSON from `experiments.tasks.arith grade`")
    p.add_argument("--reproduction", metavar="RUN_DIR",
                   help="with --card-only: a from-scratch rerun's output folder, recorded in "
                        "reproduction.json and the card (with --reproduction-eval-json)")
    p.add_argument("--reproduction-eval-json",
                   help="accuracy JSON that ponder measured on the rerun's weights")
    args = p.parse_args(argv)
    args.argv = list(argv)
    try:
        args.level_weights = {int(k): float(v) for k, v in
                              (item.split(":") for item in args.level_weights.split(","))}
    except ValueError:
        p.error(f"--level-weights: expected level:weight,..., got {args.level_weights!r}")
    if not set(args.level_weights) <= set(arith.LEVELS):
        p.error(f"--level-weights: levels are {sorted(arith.LEVELS)}")
    if bool(args.reproduction) != bool(args.reproduction_eval_json) or (
            args.reproduction and not args.card_only):
        p.error("--reproduction RUN_DIR and --reproduction-eval-json FILE go together, "
                "with --card-only")
    if not 1 <= args.stop_after <= args.steps:
        p.error("--stop-after must be between 1 and --steps")
    if (args.eval_every % args.log_every or args.card_every % args.log_every
            or args.save_every % args.log_every):
        p.error("--eval-every, --card-every and --save-every must be multiples of --log-every")
    return args


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    out = pathlib.Path(args.out)
    if args.card_only:
        card_only(args, out)
        return 0
    log = train(args, out)
    stale = out / "reproduction.json"  # a rerun of an earlier model
    if stale.exists():
        stale.unlink()
    if args.eval_json:
        card_only(args, out)
    else:
        stale = out / "eval_results.json"
        if stale.exists():
            stale.unlink()  # accuracy of an earlier model
        write_card(out, log, None)
    print(f"wrote {out} ({sum(f.stat().st_size for f in out.iterdir()) / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
