"""Tool calling end to end with the official openai SDK against `ponder serve` on
tests/data/models/tiny-tool-caller (a tiny model trained to call get_weather; see
tools/make_tiny_tool_caller.py): a tools request, the parsed call, the tool's result sent back,
the final answer — whole and streamed — plus tool_choice and the model's generation_config.json
defaults as /v1/models shows them."""
from __future__ import annotations

import json
import os
import sys
import unittest
import urllib.request

import openai

sys.path.insert(0, os.path.dirname(__file__))
from serve_harness import ROOT, Server  # noqa: E402

MODEL = os.path.join(ROOT, "tests", "data", "models", "tiny-tool-caller")
NAME = "tiny-tool-caller"
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}]
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


def streamed_message(stream):
    """What an agent framework rebuilds from the chunks: content, reasoning, calls, finish."""
    content, reasoning, calls, finish = "", "", [], None
    for chunk in stream:
        for c in chunk.choices:
            d = c.delta
            content += d.content or ""
            reasoning += (d.model_extra or {}).get("reasoning_content") or ""
            for t in d.tool_calls or []:
                if t.index == len(calls):
                    assert t.id and t.function.name, "a call opens with its id and name"
                    calls.append({"id": t.id, "type": t.type, "name": t.function.name, "arguments": ""})
                calls[t.index]["arguments"] += t.function.arguments or ""
            finish = c.finish_reason or finish
    return content, reasoning, calls, finish


class ToolCalls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server("--model", MODEL)
        cls.client = openai.OpenAI(base_url=cls.server.base + "/v1", api_key="unused", max_retries=0)

    @classmethod
    def tearDownClass(cls):
        assert cls.server.stop() == 0

    def ask(self, messages, **kw):
        return self.client.chat.completions.create(model=NAME, messages=messages, tools=TOOLS,
                                                   temperature=0, **kw)

    def test_call_result_answer(self):
        r = self.ask(ASK)
        choice = r.choices[0]
        self.assertEqual(choice.finish_reason, "tool_calls")
        self.assertIsNone(choice.message.content)
        self.assertEqual(choice.message.model_extra.get("reasoning_content"), "I need the weather tool.")
        self.assertEqual(len(choice.message.tool_calls), 1)
        call = choice.message.tool_calls[0]
        self.assertEqual(call.type, "function")
        self.assertTrue(call.id.startswith("call_"))
        self.assertEqual(call.function.name, "get_weather")
        self.assertEqual(json.loads(call.function.arguments), {"city": "Paris"})
        # The model opened its thinking itself (Qwen3's way): those tokens count as reasoning.
        block = json.dumps({"prompt": "<think>\nI need the weather tool.\n</think>"}).encode()
        with urllib.request.urlopen(self.server.base + "/tokenize", block, timeout=30) as t:
            self.assertEqual(r.usage.completion_tokens_details.reasoning_tokens, json.load(t)["count"])

        # The agent runs the tool and sends its result back, the call as the SDK returned it.
        history = ASK + [choice.message.model_dump(exclude_none=True, exclude={"reasoning_content"}),
                         {"role": "tool", "tool_call_id": call.id, "content": "21 C"}]
        final = self.ask(history).choices[0]
        self.assertEqual(final.finish_reason, "stop")
        self.assertEqual(final.message.content, "It is 21 C in Paris.")
        self.assertFalse(final.message.tool_calls)

    def test_stream_equals_the_whole_response(self):
        for city in ("Paris", "Tokyo"):
            messages = [{"role": "user", "content": f"What is the weather in {city}?"}]
            whole = self.ask(messages).choices[0]
            content, reasoning, calls, finish = streamed_message(self.ask(messages, stream=True))
            self.assertEqual(finish, "tool_calls")
            self.assertEqual(content, "")
            self.assertEqual(reasoning, whole.message.model_extra.get("reasoning_content"))
            self.assertEqual([(c["name"], c["arguments"]) for c in calls],
                             [(t.function.name, t.function.arguments) for t in whole.message.tool_calls])
            self.assertEqual(json.loads(calls[0]["arguments"]), {"city": city})

    def test_an_unoffered_function_is_not_called(self):
        # The model still writes its get_weather call, but this request offers only another tool:
        # the text comes back as content, finish_reason "stop".
        other = [{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}]
        r = self.client.chat.completions.create(model=NAME, messages=ASK, tools=other, temperature=0,
                                                max_tokens=300)
        choice = r.choices[0]
        self.assertFalse(choice.message.tool_calls)
        self.assertNotEqual(choice.finish_reason, "tool_calls")

    def test_tool_choice(self):
        r = self.ask(ASK, tool_choice="none", max_tokens=50)
        self.assertFalse(r.choices[0].message.tool_calls)
        self.assertNotEqual(r.choices[0].finish_reason, "tool_calls")
        # "required" and a named function: a well-formed call to an allowed function comes out
        # where the model would not make one — a question it never learned to answer with a call,
        # a function it never learned to call (it wants get_weather; only get_time is allowed).
        tools = TOOLS + [{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}]
        for choice, names, question in (
                ("required", {"get_weather", "get_time"}, "Tell me a joke."),
                ({"type": "function", "function": {"name": "get_time"}}, {"get_time"}, "What is the weather in Lima?"),
                ({"type": "function", "function": {"name": "get_time"}}, {"get_time"}, "What is the weather in Tokyo?")):
            with self.subTest(choice=choice, question=question):
                r = self.client.chat.completions.create(
                    model=NAME, messages=[{"role": "user", "content": question}], tools=tools,
                    tool_choice=choice, temperature=0, max_tokens=400)
                c = r.choices[0]
                self.assertEqual(c.finish_reason, "tool_calls", (question, c.message))
                self.assertEqual(len(c.message.tool_calls), 1)
                self.assertIn(c.message.tool_calls[0].function.name, names)
                args = json.loads(c.message.tool_calls[0].function.arguments)
                self.assertIsInstance(args, dict)
                if c.message.tool_calls[0].function.name == "get_weather":  # its schema: city, required
                    self.assertEqual(list(args), ["city"], args)
                    self.assertIsInstance(args["city"], str)
        # The schema holds even where the model would write other keys: "required" with only
        # get_weather, to a question it answers with nothing like a call.
        r = self.ask([{"role": "user", "content": "Tell me a joke."}], tool_choice="required", max_tokens=400)
        args = json.loads(r.choices[0].message.tool_calls[0].function.arguments)
        self.assertEqual(list(args), ["city"], args)
        # What the model would say anyway comes out unchanged under the constraint.
        forced = self.ask(ASK, tool_choice={"type": "function", "function": {"name": "get_weather"}})
        free = self.ask(ASK)
        self.assertEqual(forced.choices[0].message.tool_calls[0].function.arguments,
                         free.choices[0].message.tool_calls[0].function.arguments)
        with self.assertRaises(openai.BadRequestError) as e:
            self.ask(ASK, tool_choice={"type": "function", "function": {"name": "nope"}})
        self.assertIn("tool_choice", str(e.exception))
        with self.assertRaises(openai.BadRequestError) as e:
            self.client.chat.completions.create(model=NAME, messages=ASK, tools=[{"type": "function"}])
        self.assertIn("tools[0]", str(e.exception))

    def test_generation_config_defaults(self):
        [model] = self.client.models.list().data
        defaults = model.model_extra["ponder"]["generation_defaults"]
        self.assertEqual(defaults, {"temperature": 0.6, "top_p": 0.95, "top_k": 20, "max_new_tokens": 256,
                                    "eos_token_id": [2]})
        # Unset max_tokens: generation_config's max_new_tokens is the budget.
        r = self.client.chat.completions.create(model=NAME, messages=ASK, temperature=1.0, seed=3,
                                                extra_body={"ignore_eos": True})
        self.assertEqual(r.choices[0].finish_reason, "length")
        self.assertEqual(r.usage.completion_tokens, 256)


class WithoutGenerationConfig(unittest.TestCase):
    def test_generation_config_none_uses_ponders_defaults(self):
        server = Server("--model", MODEL, "--generation-config", "none")
        try:
            client = openai.OpenAI(base_url=server.base + "/v1", api_key="unused", max_retries=0)
            [model] = client.models.list().data
            self.assertEqual(model.model_extra["ponder"]["generation_defaults"], {})
            # The budget is the rest of the context, not max_new_tokens.
            r = client.chat.completions.create(model=NAME, messages=ASK, temperature=1.0, seed=3,
                                               extra_body={"ignore_eos": True})
            self.assertEqual(r.usage.prompt_tokens + r.usage.completion_tokens, 2048)
        finally:
            self.assertEqual(server.stop(), 0)


if __name__ == "__main__":
    unittest.main()
