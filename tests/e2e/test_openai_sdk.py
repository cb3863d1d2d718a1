"""The official openai Python SDK against `ponder serve` (one in-process replica): the calls a user
makes — models.list, chat completions plain and streamed, n with a seed, logprobs, completions —
work unchanged, and ponder's reasoning split arrives as `reasoning_content`."""
from __future__ import annotations

import os
import sys
import unittest

import openai

sys.path.insert(0, os.path.dirname(__file__))
from serve_harness import MODEL, Server  # noqa: E402

MESSAGES = [{"role": "user", "content": "What is 47 * 23 + 158?"}]


class OpenAISdk(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server("--model", MODEL)
        cls.client = openai.OpenAI(base_url=cls.server.base + "/v1", api_key="unused", max_retries=0)

    @classmethod
    def tearDownClass(cls):
        assert cls.server.stop() == 0

    def test_models(self):
        self.assertEqual([m.id for m in self.client.models.list()], ["tiny-reasoner"])

    def test_chat(self):
        r = self.client.chat.completions.create(model="tiny-reasoner", messages=MESSAGES,
                                                max_tokens=400, temperature=0)
        choice = r.choices[0]
        self.assertIn(choice.finish_reason, ("stop", "length"))
        self.assertEqual(choice.message.role, "assistant")
        reasoning = (choice.message.model_extra or {}).get("reasoning_content")
        self.assertTrue(reasoning)
        self.assertEqual(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens)
        self.assertGreater(r.usage.completion_tokens_details.reasoning_tokens, 0)

    def test_chat_stream_matches_the_plain_answer(self):
        plain = self.client.chat.completions.create(model="tiny-reasoner", messages=MESSAGES,
                                                    max_tokens=300, temperature=0)
        stream = self.client.chat.completions.create(model="tiny-reasoner", messages=MESSAGES,
                                                     max_tokens=300, temperature=0, stream=True,
                                                     stream_options={"include_usage": True})
        content, usage, finish = "", None, None
        for chunk in stream:
            if chunk.usage:
                usage = chunk.usage
            for c in chunk.choices:
                content += c.delta.content or ""
                finish = c.finish_reason or finish
        self.assertEqual(content, plain.choices[0].message.content or "")
        self.assertEqual(finish, plain.choices[0].finish_reason)
        self.assertEqual(usage.completion_tokens, plain.usage.completion_tokens)

    def test_n_seed_and_logprobs(self):
        kw = dict(model="tiny-reasoner", messages=MESSAGES, max_tokens=20, temperature=1.0, n=3, seed=11,
                  logprobs=True, top_logprobs=2)
        a = self.client.chat.completions.create(**kw)
        b = self.client.chat.completions.create(**kw)
        self.assertEqual(len(a.choices), 3)
        self.assertEqual([c.message for c in a.choices], [c.message for c in b.choices])
        for c in a.choices:
            self.assertTrue(c.logprobs.content)
            self.assertEqual(len(c.logprobs.content[0].top_logprobs), 2)

    def test_completions_and_errors(self):
        r = self.client.completions.create(model="tiny-reasoner", prompt=["What is 1 + 2?", "What is 3 + 4?"],
                                           max_tokens=5, temperature=0)
        self.assertEqual(sorted(c.index for c in r.choices), [0, 1])
        with self.assertRaises(openai.NotFoundError):
            self.client.chat.completions.create(model="nope", messages=MESSAGES)
        with self.assertRaises(openai.BadRequestError) as e:
            self.client.chat.completions.create(model="tiny-reasoner", messages=MESSAGES, temperature=-1)
        self.assertIn("temperature", str(e.exception))


if __name__ == "__main__":
    unittest.main(verbosity=2)
