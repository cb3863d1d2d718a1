#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora, fuzz/corpus/<target>/, from the project's own files.

Seeds are real inputs: requests as clients send them, the safetensors headers of the models the
project makes (tests/data/models, models/tiny-reasoner), the bundled tokenizers trimmed to a few
hundred tokens (../shared/tokenizers = tests/data/tokenizers), the real chat templates and the
Jinja cases of tests/data/chat_templates, replica protocol frames as the pool and the replicas
send them. Deterministic: a second run writes identical files. Standard library only.

    python3 fuzz/make_seeds.py
"""
import json
import shutil
import struct
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
DATA = ROOT / "tests" / "data"


def writer(target):
    d = CORPUS / target
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)

    def write(name, data):
        if isinstance(data, str):
            data = data.encode()
        (d / name).write_bytes(data)

    return write


def dumps(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


# --- HTTP requests: one byte (the read size) + the connection's bytes -------------------------

def http_seeds():
    write = writer("http_request")
    auth = "Authorization: Bearer sk-fuzz-key\r\n"
    chat = dumps({"model": "tiny-reasoner", "messages": [{"role": "user", "content": "2+2?"}],
                  "max_tokens": 8})
    completion = dumps({"prompt": "Once upon a time", "max_tokens": 4, "stream": True})

    def post(path, body, extra=""):
        return (f"POST {path} HTTP/1.1\r\nHost: localhost:8000\r\n{auth}"
                f"Content-Type: application/json\r\n{extra}Content-Length: {len(body.encode())}"
                f"\r\n\r\n{body}")

    chunked_body = "".join(f"{len(p):x}\r\n{p}\r\n" for p in (completion[:10], completion[10:]))
    seeds = {
        "get_models": f"GET /v1/models HTTP/1.1\r\nHost: localhost\r\n{auth}\r\n",
        "get_model": f"GET /v1/models/tiny-reasoner?x=1 HTTP/1.1\r\nHost: h\r\n{auth}\r\n",
        "get_other_model": f"GET /v1/models/gpt-4 HTTP/1.1\r\nHost: h\r\n{auth}\r\n",
        "health_http10": "GET /health HTTP/1.0\r\n\r\n",
        "metrics": "GET /metrics HTTP/1.1\r\nHost: h\r\nAccept: text/plain\r\n\r\n",
        "chat": post("/v1/chat/completions", chat),
        "completion_expect": post("/v1/completions", completion, "Expect: 100-continue\r\n"),
        "completion_chunked": (f"POST /v1/completions HTTP/1.1\r\nHost: h\r\n{auth}"
                               f"Transfer-Encoding: chunked\r\n\r\n{chunked_body}0\r\n\r\n"),
        "pipelined": (f"GET /health HTTP/1.1\r\nHost: h\r\n\r\n"
                      f"GET /v1/models HTTP/1.1\r\nHost: h\r\n{auth}Connection: keep-alive\r\n\r\n"
                      + post("/v1/chat/completions", chat, "Connection: close\r\n")),
        "wrong_method": f"DELETE /v1/chat/completions HTTP/1.1\r\nHost: h\r\n{auth}\r\n",
        "bad_key": ("GET /v1/models HTTP/1.1\r\nHost: h\r\n"
                    "authorization: bearer   sk-fuzz-kez\r\n\r\n"),
        "no_key": "POST /v1/completions HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
        "unknown_path": "GET /v2/../etc/passwd?q=%00 HTTP/1.1\r\nHost: h\r\n\r\n",
        "bad_json": post("/v1/chat/completions", '{"messages": [}'),
        "truncated": post("/v1/chat/completions", chat)[:-5],
        "garbage": "GET / HTTP/9.9\r\n\x01\x02: x\r\n\r\n",
    }
    for i, (name, text) in enumerate(sorted(seeds.items())):
        write(name, bytes([i * 7 % 64]) + text.encode())


# --- OpenAI request bodies --------------------------------------------------------------------

def completion_seeds():
    write = writer("completion_request")
    tool = {"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}}
    seeds = {
        "chat_minimal": {"model": "tiny-reasoner",
                         "messages": [{"role": "user", "content": "What is 17 * 3?"}]},
        "chat_system_sampling": {
            "messages": [{"role": "developer", "content": "Answer with a number."},
                         {"role": "user", "content": "3+4"}],
            "temperature": 0.7, "top_p": 0.9, "top_k": 20, "min_p": 0.05, "seed": 1234,
            "presence_penalty": 0.5, "frequency_penalty": -0.5, "repetition_penalty": 1.1,
            "max_tokens": 64, "n": 2, "user": "fuzz"},
        "chat_parts_stop": {
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Count:"},
                                                      {"type": "text", "text": "1 2 3"}]}],
            "stop": ["\n\n", "5", "</think>"], "include_stop_str_in_output": True,
            "max_completion_tokens": 32, "min_tokens": 2},
        "chat_tools": {
            "messages": [{"role": "user", "content": "Weather in Paris?"},
                         {"role": "assistant", "content": None, "tool_calls": [
                             {"id": "c1", "type": "function",
                              "function": {"name": "get_weather",
                                           "arguments": "{\"city\": \"Paris\"}"}}]},
                         {"role": "tool", "tool_call_id": "c1", "content": "18C"}],
            "tools": [tool], "tool_choice": "auto"},
        "chat_reasoning_stream": {
            "messages": [{"role": "user", "content": "Think, then answer: 2+2"},
                         {"role": "assistant", "content": "4", "reasoning_content": "2+2=4"},
                         {"role": "user", "content": "and 3+3?"}],
            "stream": True, "stream_options": {"include_usage": True},
            "logprobs": True, "top_logprobs": 3, "skip_special_tokens": False},
        "chat_thinking_budget": {
            "messages": [{"role": "user", "content": "Solve 12*12"}],
            "max_thinking_tokens": 16, "min_thinking_tokens": 4, "extend_thinking": 1,
            "chat_template_kwargs": {"enable_thinking": True}, "add_generation_prompt": True,
            "max_tokens": 40},
        "chat_logit_bias": {"messages": [{"role": "user", "content": "hi"}],
                            "logit_bias": {"5": -100, "17": 2.5}, "stop_token_ids": [1, 2],
                            "ignore_eos": True, "response_format": {"type": "text"}},
        "completion_text": {"model": "tiny-reasoner", "prompt": "Q: 5+5=\nA:", "max_tokens": 4,
                            "logprobs": 2, "echo": False},
        "completion_batch": {"prompt": ["1+1=", "2+2=", "<think>"], "n": 2, "best_of": 2,
                             "stop": "\n", "temperature": 0},
        "completion_ids": {"prompt": [5, 6, 7, 8, 9], "max_tokens": 8, "suffix": ""},
        "completion_id_batches": {"prompt": [[3, 4], [10, 11, 12]], "stream": True},
        "null_fields": {"messages": [{"role": "user", "content": "x"}], "temperature": None,
                        "stop": None, "n": None, "tools": None, "prompt": "x"},
    }
    for name, body in seeds.items():
        write(name + ".json", json.dumps(body, ensure_ascii=False, indent=1))
    # Regressions (docs/fuzzing.md): a response_format type that is no string, nesting just past
    # the depth limit.
    write("regression_response_format.json",
          dumps({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": 5}}))
    write("regression_deep_tools.json",
          dumps({"messages": [{"role": "user", "content": "x"}]})[:-1] + ',"tools":' +
          "[" * 130 + "]" * 130 + "}")


# --- safetensors: 8 bytes (zeros after the input, little-endian) + the file's header -----------

def safetensors_seeds():
    write = writer("safetensors")
    files = sorted(DATA.glob("models/*/*.safetensors")) + [
        ROOT / "models" / "tiny-reasoner" / "model.safetensors"]
    for path in files:
        raw = path.read_bytes()
        (header_len,) = struct.unpack("<Q", raw[:8])
        head = raw[:8 + header_len]
        rest = len(raw) - len(head)
        name = f"{path.parent.name}_{path.stem}"
        write(name, struct.pack("<Q", rest) + head)
    # Edge cases of the format, as files a broken export could write.
    def file(header, zeros):
        h = dumps(header).encode()
        return struct.pack("<Q", zeros) + struct.pack("<Q", len(h)) + h
    write("empty_header", file({}, 0))
    write("metadata_only", file({"__metadata__": {"format": "pt"}}, 0))
    write("scalar_and_empty", file({"s": {"dtype": "F32", "shape": [], "data_offsets": [0, 4]},
                                    "e": {"dtype": "BF16", "shape": [0, 7],
                                          "data_offsets": [4, 4]}}, 4))
    write("all_dtypes", file({d: {"dtype": d, "shape": [2], "data_offsets": [16 * i, 16 * i + 2 * n]}
                              for i, (d, n) in enumerate([("F32", 4), ("F16", 2), ("BF16", 2),
                                                          ("I32", 4), ("I64", 8), ("U8", 1),
                                                          ("I8", 1), ("BOOL", 1), ("F64", 8)])},
                             16 * 9))
    # Regression (docs/fuzzing.md): a huge dimension after a 0 one.
    write("regression_huge_dim", file({"e": {"dtype": "F32", "shape": [0, 2**64 - 1],
                                             "data_offsets": [0, 0]}}, 0))


def safetensors_index_seeds():
    write = writer("safetensors_index")
    index = (DATA / "models" / "qwen3_bf16_sharded" / "model.safetensors.index.json").read_text()
    write("qwen3_bf16_sharded.json", index)
    parsed = json.loads(index)
    some = dict(list(parsed["weight_map"].items())[:3])
    write("three_tensors.json", json.dumps({"metadata": {}, "weight_map": some}, indent=2))
    write("missing_shard.json", json.dumps(
        {"weight_map": {"lm_head.weight": "model-00005-of-00004.safetensors"}}))
    write("wrong_shard.json", json.dumps(
        {"weight_map": {"lm_head.weight": "model-00001-of-00004.safetensors"}}))
    write("truncated_shard.json", json.dumps({"weight_map": {"x": "truncated.safetensors"}}))
    write("not_safetensors.json", json.dumps({"weight_map": {"x": "config.json"}}))
    write("directory.json", json.dumps({"weight_map": {"x": "shards", "y": ".."}}))
    write("empty_map.json", json.dumps({"weight_map": {}}))


# --- tokenizer.json [+ NUL + tokenizer_config.json] -------------------------------------------

def trim_tokenizer(tok, config, keep_ids=400, keep_added=24):
    model = tok["model"]
    vocab = {t: i for t, i in model["vocab"].items() if i < keep_ids}
    merges = []
    for m in model["merges"]:
        a, b = m.split(" ", 1) if isinstance(m, str) else m
        if a in vocab and b in vocab and a + b in vocab:
            merges.append(m)
    model = dict(model, vocab=vocab, merges=merges)
    added = tok["added_tokens"][:keep_added]
    named = set()
    for key in ("bos_token", "eos_token", "pad_token", "unk_token"):
        v = config.get(key)
        if isinstance(v, dict):
            v = v.get("content")
        if isinstance(v, str):
            named.add(v)
    added += [a for a in tok["added_tokens"][keep_added:] if a["content"] in named]
    kept_ids = {str(a["id"]) for a in added}
    if "added_tokens_decoder" in config:
        config = dict(config, added_tokens_decoder={
            k: v for k, v in config["added_tokens_decoder"].items() if k in kept_ids})
    return dict(tok, model=model, added_tokens=added), config


def tokenizer_seeds():
    write = writer("tokenizer_json")
    families = [("tiny_reasoner", ROOT / "models" / "tiny-reasoner", False)]
    families += [(d.name, d, d.name in ("qwen3", "deepseek_v3", "llama3"))
                 for d in sorted((DATA / "tokenizers").iterdir()) if d.is_dir()]
    base = None
    for name, d, trim in families:
        tok = json.loads((d / "tokenizer.json").read_text())
        config_path = d / "tokenizer_config.json"
        config = json.loads(config_path.read_text()) if config_path.exists() else {}
        if trim:
            tok, config = trim_tokenizer(tok, config)
        write(name, dumps(tok) + "\0" + dumps(config))
        write(name + "_no_config", dumps(tok))
        if name == "tiny_reasoner":
            base = tok
    # The tiny tokenizer with each normalizer, pre-tokenizer and decoder Hugging Face was run with.
    for kind, key in (("normalizers", "normalizer"), ("pre_tokenizers", "pre_tokenizer"),
                      ("decoders", "decoder")):
        first = json.loads((DATA / "tokenizers" / f"{kind}.jsonl").open().readline())
        for i, component in enumerate(first[kind][:12]):
            write(f"tiny_{key}_{i:02d}", dumps(dict(base, **{key: component})))
    # A finding: one id near INT32_MAX sized the id table to 2^31 strings.
    write("regression_vocab_id_far_past_entries", dumps(dict(
        base, model=dict(base["model"], vocab={"a": 0, "b": 1912360975}, merges=[]))))


# --- chat templates ---------------------------------------------------------------------------

def chat_template_seeds():
    write = writer("chat_template")
    for d in sorted((DATA / "chat_templates").iterdir()):
        if d.is_dir():
            write(d.name + ".jinja", json.loads((d / "tokenizer_config.json").read_text())
                  ["chat_template"])
    write("tiny_reasoner.jinja", json.loads(
        (ROOT / "models" / "tiny-reasoner" / "tokenizer_config.json").read_text())["chat_template"])
    # Regression (docs/fuzzing.md): cycles a render must break.
    write("regression_cycles.jinja", "{% macro m(a) %}{{ a }}{% endmacro %}{{ m(1) }}"
          "{% set ns = namespace(n=0) %}{% set ns.me = ns %}"
          "{% for x in messages %}{{ loop.changed(loop) }}{% endfor %}")
    # Regressions (docs/fuzzing.md): widths that overflowed or ran for minutes; %n reaching printf.
    write("regression_percent_width_overflow.jinja",
          "{{ '%0000000000000000000002000000000000000000000s and %s' % ('a', 'b') }}")
    write("regression_ljust_huge_width.jinja", "{{ 'ab'.ljust(45555555555, '.') }}")
    write("regression_format_n.jinja", "{{ '{:>5}|{:n}'.format('r', 42) }}")
    cases = json.loads((DATA / "chat_templates" / "jinja_cases.json").read_text())["cases"]
    for case in cases:
        write(f"case_{case['name']}.jinja", case["template"])


# --- tool calls in a model's answer -----------------------------------------------------------

def tool_calls_seeds():
    write = writer("tool_calls")
    hermes, llama, deepseek = b"\x00\x07", b"\x01\x07", b"\x02\x07"
    call = '{"name": "get_weather", "arguments": {"city": "Paris", "days": [1, 2]}}'
    write("hermes_two", hermes + ("Let me check.\n<tool_call>\n" + call + "\n</tool_call>\n"
                                  '<tool_call>{"name": "search", "parameters": "{\\"q\\": 1}"}'
                                  "</tool_call>").encode())
    write("hermes_array", hermes + ('<tool_call>[{"name": "f"}, ' + call + "]</tool_call>").encode())
    write("hermes_malformed", hermes + b'ok <tool_call>{"name": "nope", "arguments": {}}</tool_call>'
          b' <tool_call>{"name": "f", "arguments": {"a": }</tool_call> <tool_')
    write("llama_two", llama + ('<|python_tag|>' + call.replace("arguments", "parameters") +
                                '; {"name": "f", "parameters": {}}').encode())
    write("llama_text", llama + b"The answer is {42}.")
    # Calls as tool_choice "required" makes them (the constraint accepts them whole).
    write("required_hermes", hermes + b'\n<tool_call>\n{"name": "get_weather", "arguments": '
          b'{"city": "Par\xc3\xads", "unit": "c"}}\n</tool_call>')
    write("required_llama", llama + b'{"name": "f", "parameters": {}}')
    write("required_deepseek", deepseek + "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>"
          'search\n```json\n{"q": ["\\ud83d\\ude00", 1.5e3]}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>'.encode())
    write("deepseek_v3", deepseek + (
        "Checking.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n"
        '```json\n{"city": "Paris"}\n```<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>search'
        '<｜tool▁sep｜>{"q": "x"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>').encode())
    # A finding: the block's end marker quoted inside a JSON string argument ended the block.
    write("deepseek_end_marker_in_argument_string", deepseek + (
        "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>search\n```json\n"
        '{"q": ["<｜tool▁calls▁end｜>\\ud83d\\ude00", 1.5e3]}\n```<｜tool▁call▁end｜>'
        "<｜tool▁calls▁end｜>").encode())


# --- replica protocol frames (protobuf, encoded by hand) ---------------------------------------

def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, wire, payload):
    return varint(num << 3 | wire) + payload


def v(num, n):  # int32/int64/uint64/bool
    return field(num, 0, varint(n)) if n else b""


def s(num, data):  # string, bytes, message
    data = data.encode() if isinstance(data, str) else data
    return field(num, 2, varint(len(data)) + data)


def f32(num, x):
    return field(num, 5, struct.pack("<f", x))


def f64(num, x):
    return field(num, 1, struct.pack("<d", x))


def packed(num, values):
    return s(num, b"".join(varint(x) for x in values)) if values else b""


def packed_f32(num, values):
    return s(num, b"".join(struct.pack("<f", x) for x in values)) if values else b""


def envelope(body_field, body, version=1):
    return v(1, version) + s(body_field, body)


def replica_wire_seeds():
    write = writer("replica_wire")
    register = (s(1, "tiny-reasoner") + v(2, 1) + v(3, 1) + v(4, 512) + v(5, 16) + v(6, 32) +
                v(7, 64) + v(8, 4242) + s(9, "replica-1") + s(10, "node-a") + v(11, 0))
    write("register", envelope(10, register))
    write("registered", envelope(11, s(1, "r1") + v(2, 500)))
    write("heartbeat", envelope(12, v(1, 2) + v(2, 3) + v(3, 40) + v(4, 472) + v(5, 10) +
                                v(6, 7) + v(7, 900) + v(8, 1) + v(9, 1) + v(10, 5) + v(11, 300)))
    write("heartbeat_ack", envelope(12, b""))
    sampling = (f32(1, 0.7) + v(2, 20) + f32(3, 0.9) + f32(4, 0.05) + f32(5, 1.1) + f32(6, 0.5) +
                f32(7, -0.5) + v(8, 1234) + v(9, 3) + s(10, v(1, 17) + f32(2, -100.0)) +
                s(10, v(1, 5) + f32(2, 2.5)) + v(11, 2) + packed(12, [9, 11]))
    submit = (v(1, 7) + packed(2, [1, 20, 30, 40, 2]) + v(3, 2) + s(4, sampling) + v(5, 64) +
              v(6, 1) + packed(7, [2]) + s(8, "\n\n") + s(8, "</think>") + v(9, 0) + v(10, 1) +
              v(11, 16) + v(12, 4) + v(13, 1))
    write("submit", envelope(13, submit))
    write("submit_score", envelope(13, v(1, 8) + packed(2, [1, 2, 3]) + v(3, 1) +
                                   packed(14, [4, 5, 6])))
    write("cancel", envelope(14, v(1, 7)))
    usage = v(1, 5) + v(2, 0) + v(3, 4) + v(4, 3) + v(5, 1) + f64(6, 1.25e7) + f64(7, 3.0625e7)
    top = s(1, b"".join(varint(t) for t in (20, 21))) + packed_f32(2, [-0.1, -2.3])
    tokens = (v(1, 7) + v(2, 1) + packed(3, [20, 21]) + packed_f32(4, [-0.1, -0.7]) + s(5, top) +
              s(5, top) + v(7, 1) + s(8, "stop") + s(9, "\n\n") + v(10, 3) + s(11, usage))
    write("tokens_finished", envelope(15, tokens))
    write("tokens_partial", envelope(15, v(1, 7) + packed(3, [22]) + packed_f32(4, [-0.2])))
    write("error_fatal", envelope(16, v(2, 5) + s(3, "drained") + v(4, 1)))
    write("error_request", envelope(16, v(1, 9) + v(2, 1) + s(3, "prompt: empty")))
    write("drain", envelope(17, v(1, 30000)))
    write("other_version", envelope(12, b"", version=2))


def main():
    http_seeds()
    completion_seeds()
    safetensors_seeds()
    safetensors_index_seeds()
    tokenizer_seeds()
    chat_template_seeds()
    tool_calls_seeds()
    replica_wire_seeds()
    total = sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file())
    count = sum(1 for p in CORPUS.rglob("*") if p.is_file())
    print(f"fuzz/corpus: {count} seeds, {total / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
