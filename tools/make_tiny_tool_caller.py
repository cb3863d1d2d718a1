#!/usr/bin/env python3
"""Trains tests/data/models/tiny-tool-caller: a tiny LlamaForCausalLM that has memorised a few
tool-calling conversations, so that tests can rely on a model that emits real tool calls.

A random model cannot be relied on to emit a call; this one, given the Qwen3 chat template's
prompt for "What is the weather in <city>?" with a get_weather tool, answers with a Hermes-style
call ("<think>…</think>\\n\\n<tool_call>\\n{"name": "get_weather", "arguments": {"city": …}}
\\n</tool_call>"), and given the tool's result back, answers in words. The prompts are rendered
from the real Qwen3 chat template (tests/data/chat_templates/qwen3) with jinja2 in transformers'
chat-template environment, and tokenized with the bundled tiny reasoner's byte-level BPE
(models/tiny-reasoner/tokenizer.json, which has <|im_start|>, <|im_end|>, <think> and </think>).

The model is written in plain torch (Llama: RMSNorm, RoPE with rotate_half, grouped-query
attention, SwiGLU) — so no `transformers` is needed — trained in float32 on those conversations
alone (loss on the assistant's tokens), and saved in bf16 in the Hugging Face layout: config.json,
model.safetensors, generation_config.json, tokenizer.json, tokenizer_config.json. The script
checks that greedy decoding with the bf16 weights reproduces every memorised answer before it
writes anything. Deterministic from --seed on one machine and torch version.

  python3 -m venv --system-site-packages /work/refenv   # Debian: python3-torch
  /work/refenv/bin/pip install safetensors tokenizers jinja2
  /work/refenv/bin/python tools/make_tiny_tool_caller.py --out tests/data/models/tiny-tool-caller
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import shutil

import jinja2
import jinja2.ext
import jinja2.sandbox
import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer

REPO = pathlib.Path(__file__).resolve().parents[1]
TINY = REPO / "models" / "tiny-reasoner"
QWEN3 = REPO / "tests" / "data" / "chat_templates" / "qwen3" / "tokenizer_config.json"

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}]
# (city, the tool's answer). The tests use these conversations as they are.
CITIES = [("Paris", "21 C"), ("Tokyo", "18 C"), ("Lima", "25 C")]


def conversations():
    """(messages, tools, completion) triples: a call, then the answer after the tool's result."""
    out = []
    for city, result in CITIES:
        user = {"role": "user", "content": f"What is the weather in {city}?"}
        call = {"id": "call_1", "type": "function",
                "function": {"name": "get_weather", "arguments": {"city": city}}}
        out.append(([user], TOOLS,
                    "<think>\nI need the weather tool.\n</think>\n\n<tool_call>\n"
                    + json.dumps({"name": "get_weather", "arguments": {"city": city}})
                    + "\n</tool_call><|im_end|>"))
        # As an OpenAI client sends the history back (content null becomes "" in ponder; the
        # arguments string becomes an object for Qwen3's template).
        history = [user, {"role": "assistant", "content": "", "tool_calls": [call]},
                   {"role": "tool", "tool_call_id": "call_1", "content": result}]
        out.append((history, TOOLS,
                    f"<think>\nThe tool answered.\n</think>\n\nIt is {result} in {city}.<|im_end|>"))
    return out


def render(template: str, messages, tools) -> str:
    """transformers' chat-template environment (render_jinja_template), enough for Qwen3's."""
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template).render(messages=messages, tools=tools,
                                            add_generation_prompt=True, bos_token="",
                                            eos_token="<|im_end|>")


# ------------------------------------------------------------------------------------ the model

class Llama(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        d, h, kv, hd, f = (c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"],
                           c["head_dim"], c["intermediate_size"])
        lin = lambda i, o: torch.nn.Linear(i, o, bias=False)  # noqa: E731
        self.embed = torch.nn.Embedding(c["vocab_size"], d)
        self.layers = torch.nn.ModuleList()
        for _ in range(c["num_hidden_layers"]):
            self.layers.append(torch.nn.ModuleDict({
                "q_proj": lin(d, h * hd),
                "k_proj": lin(d, kv * hd), "v_proj": lin(d, kv * hd), "o_proj": lin(h * hd, d),
                "gate_proj": lin(d, f), "up_proj": lin(d, f), "down_proj": lin(f, d)}))
        self.norms = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.ones(d)) for _ in range(2 * c["num_hidden_layers"] + 1)])
        self.lm_head = lin(d, c["vocab_size"])
        inv = 1.0 / (c["rope_theta"] ** (torch.arange(0, hd, 2).float() / hd))
        pos = torch.arange(c["max_position_embeddings"]).float()
        freqs = torch.outer(pos, inv)
        emb = torch.cat([freqs, freqs], dim=-1)
        self.register_buffer("cos", emb.cos(), persistent=False)
        self.register_buffer("sin", emb.sin(), persistent=False)
        for p in self.parameters():
            if p.dim() == 2:
                torch.nn.init.normal_(p, std=0.05)

    def rms(self, x, w):
        x32 = x.float()
        return x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.c["rms_norm_eps"]) * w

    @staticmethod
    def rotate_half(x):
        a, b = x.chunk(2, dim=-1)
        return torch.cat([-b, a], dim=-1)

    def forward(self, ids):
        c = self.c
        t = ids.shape[1]
        h, kv, hd = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
        x = self.embed(ids)
        cos, sin = self.cos[:t], self.sin[:t]
        mask = torch.full((t, t), float("-inf")).triu(1)
        for i, L in enumerate(self.layers):
            y = self.rms(x, self.norms[2 * i])
            q = L["q_proj"](y).view(1, t, h, hd).transpose(1, 2)
            k = L["k_proj"](y).view(1, t, kv, hd).transpose(1, 2)
            v = L["v_proj"](y).view(1, t, kv, hd).transpose(1, 2)
            q = q * cos + self.rotate_half(q) * sin
            k = k * cos + self.rotate_half(k) * sin
            k = k.repeat_interleave(h // kv, dim=1)
            v = v.repeat_interleave(h // kv, dim=1)
            att = (q @ k.transpose(-1, -2)) / math.sqrt(hd) + mask
            o = (att.softmax(-1) @ v).transpose(1, 2).reshape(1, t, h * hd)
            x = x + L["o_proj"](o)
            y = self.rms(x, self.norms[2 * i + 1])
            x = x + L["down_proj"](torch.nn.functional.silu(L["gate_proj"](y)) * L["up_proj"](y))
        return self.lm_head(self.rms(x, self.norms[-1]))

    def hf_state_dict(self):
        sd = {"model.embed_tokens.weight": self.embed.weight, "model.norm.weight": self.norms[-1],
              "lm_head.weight": self.lm_head.weight}
        for i, L in enumerate(self.layers):
            p = f"model.layers.{i}."
            sd[p + "input_layernorm.weight"] = self.norms[2 * i]
            sd[p + "post_attention_layernorm.weight"] = self.norms[2 * i + 1]
            for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
                sd[p + f"self_attn.{n}.weight"] = L[n].weight
            for n in ("gate_proj", "up_proj", "down_proj"):
                sd[p + f"mlp.{n}.weight"] = L[n].weight
        return {k: v.detach().to(torch.bfloat16).contiguous() for k, v in sd.items()}


def greedy(model, prompt, n, eos):
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(n):
            nxt = int(model(torch.tensor([ids])).float()[0, -1].argmax())
            ids.append(nxt)
            if nxt == eos:
                break
    return ids[len(prompt):]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)

    tok = Tokenizer.from_file(str(TINY / "tokenizer.json"))
    template = json.loads(QWEN3.read_text())["chat_template"]
    data = []
    for messages, tools, completion in conversations():
        prompt = tok.encode(render(template, messages, tools), add_special_tokens=False).ids
        answer = tok.encode(completion, add_special_tokens=False).ids
        data.append((prompt, answer))
    longest = max(len(p) + len(a) for p, a in data)
    eos = tok.token_to_id("<|im_end|>")
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 128,
        "intermediate_size": 256, "num_attention_heads": 4, "num_key_value_heads": 2,
        "head_dim": 32, "num_hidden_layers": 2, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
        "max_position_embeddings": 2048, "vocab_size": tok.get_vocab_size(),
        "tie_word_embeddings": False, "bos_token_id": 0, "eos_token_id": eos, "pad_token_id": 0,
        "hidden_act": "silu", "attention_bias": False, "mlp_bias": False, "torch_dtype": "bfloat16",
    }
    assert longest < config["max_position_embeddings"], longest
    model = Llama(config)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    for step in range(args.steps):
        total = 0.0
        opt.zero_grad()
        for prompt, answer in data:
            ids = torch.tensor([prompt + answer])
            logits = model(ids)[0, len(prompt) - 1:-1]
            loss = torch.nn.functional.cross_entropy(logits, torch.tensor(answer))
            (loss / len(data)).backward()
            total += float(loss) / len(data)
        for g in opt.param_groups:
            g["lr"] = 3e-3 * min(1.0, (step + 1) / 50) * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        opt.step()
        if step % 50 == 0 or step == args.steps - 1:
            print(f"step {step}: loss {total:.4f}", flush=True)

    # The bf16 weights must reproduce every answer greedily.
    sd = model.hf_state_dict()
    check = Llama(config)
    with torch.no_grad():
        check.embed.weight.copy_(sd["model.embed_tokens.weight"].float())
        check.lm_head.weight.copy_(sd["lm_head.weight"].float())
        check.norms[-1].copy_(sd["model.norm.weight"].float())
        for i, L in enumerate(check.layers):
            p = f"model.layers.{i}."
            check.norms[2 * i].copy_(sd[p + "input_layernorm.weight"].float())
            check.norms[2 * i + 1].copy_(sd[p + "post_attention_layernorm.weight"].float())
            for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
                L[n].weight.copy_(sd[p + f"self_attn.{n}.weight"].float())
            for n in ("gate_proj", "up_proj", "down_proj"):
                L[n].weight.copy_(sd[p + f"mlp.{n}.weight"].float())
    for prompt, answer in data:
        got = greedy(check, prompt, len(answer) + 4, eos)
        if got != answer:
            raise SystemExit("bf16 greedy decoding does not reproduce: "
                             + repr(tok.decode(got, skip_special_tokens=False)))

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_file(sd, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    # Sampling defaults its authors would ship (the server applies them to unset fields).
    (out / "generation_config.json").write_text(json.dumps({
        "bos_token_id": 0, "eos_token_id": [eos], "do_sample": True, "temperature": 0.6,
        "top_p": 0.95, "top_k": 20, "max_new_tokens": 256}, indent=2) + "\n")
    shutil.copy(TINY / "tokenizer.json", out / "tokenizer.json")
    tc = json.loads((TINY / "tokenizer_config.json").read_text())
    tc["chat_template"] = template
    tc["model_max_length"] = config["max_position_embeddings"]
    (out / "tokenizer_config.json").write_text(json.dumps(tc, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out}: {sum(v.numel() for v in sd.values())} parameters, "
          f"{len(data)} conversations of up to {longest} tokens")


if __name__ == "__main__":
    main()
