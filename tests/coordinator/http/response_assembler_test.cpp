// ChoiceStream and ResponseAssembler on the tiny reasoner's byte-level tokenizer: streamed deltas
// concatenate to the whole response, multi-byte characters split across tokens never show up as
// U+FFFD, stop strings and end-of-sequence tokens are cut, reasoning is split, and the OpenAI
// objects and SSE chunks have their exact shapes.
#include "coordinator/api/response_assembler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

namespace ponder::coordinator::api {
namespace {

using Json = nlohmann::ordered_json;
const std::string kReplacement = "\xEF\xBF\xBD";
constexpr int32_t kEos = 2;  // the tiny reasoner's <|im_end|>

text::Tokenizer tiny_tokenizer() {
  auto t = text::Tokenizer::load(std::string(PONDER_SOURCE_DIR) + "/models/tiny-reasoner");
  EXPECT_TRUE(t.has_value());
  return std::move(*t);
}

// One output per token, the last one finished with `reason` (and `stop` as the engine's stop
// string).
std::vector<worker::EngineOutput> outputs_of(const std::vector<int32_t>& ids, int32_t index = 0,
                                             const std::string& reason = "length",
                                             const std::string& stop = "") {
  std::vector<worker::EngineOutput> outs;
  for (size_t i = 0; i < ids.size(); ++i) {
    worker::EngineOutput o;
    o.index = index;
    o.tokens = {ids[i]};
    o.logprobs = {-0.5f};
    o.finished = i + 1 == ids.size();
    if (o.finished) {
      o.finish_reason = reason;
      o.stop_string = stop;
      o.usage.completion_tokens = static_cast<int64_t>(ids.size());
    }
    outs.push_back(std::move(o));
  }
  return outs;
}

TEST(ChoiceStream, SplitCharactersNeverBecomeReplacementCharacters) {
  text::Tokenizer tok = tiny_tokenizer();
  const std::string text =
      "h\xC3\xA9llo w\xC3\xB6rld \xE2\x9C\x93 \xF0\x9F\x99\x82!";  // é ö ✓ 🙂
  std::vector<int32_t> ids = tok.encode(text);
  int partial = 0;
  for (int32_t id : ids)
    partial += tok.decode(std::span<const int32_t>(&id, 1)).find(kReplacement) != std::string::npos;
  ASSERT_GT(partial, 0) << "the test needs tokens that hold part of a character";
  ChoiceStream s(tok, {});
  std::string all;
  for (const auto& o : outputs_of(ids)) {
    ChoiceDelta d = s.push(o);
    EXPECT_EQ(d.content.find(kReplacement), std::string::npos);
    all += d.content;
  }
  EXPECT_EQ(all, text);
}

TEST(ChoiceStream, StopStringIsCutAndHeldBack) {
  text::Tokenizer tok = tiny_tokenizer();
  // The engine stops at the token that completes the stop string.
  std::vector<int32_t> ids = tok.encode("12+5=17 so the answer");
  for (bool include : {false, true}) {
    ChoiceStream s(tok, {.stop = {"answer"}, .include_stop_str_in_output = include});
    std::string all;
    auto outs = outputs_of(ids, 0, "stop", "answer");
    for (const auto& o : outs) {
      ChoiceDelta d = s.push(o);
      all += d.content;
      // Nothing of the stop string leaks out before the end.
      if (!d.finished) {
        EXPECT_EQ(all.find("ans"), std::string::npos) << all;
      } else {
        EXPECT_EQ(d.stop_reason, "answer");
      }
    }
    EXPECT_EQ(all, include ? "12+5=17 so the answer" : "12+5=17 so the ");
  }
}

TEST(ChoiceStream, EndOfSequenceTokenIsLeftOut) {
  text::Tokenizer tok = tiny_tokenizer();
  std::vector<int32_t> ids = tok.encode("done");
  ids.push_back(*tok.token_id("<|im_end|>"));
  for (bool include : {false, true}) {
    ChoiceStream s(
        tok,
        {.skip_special_tokens = false, .include_stop_str_in_output = include, .logprobs = true});
    std::string all;
    size_t logprobs = 0;
    for (const auto& o : outputs_of(ids, 0, "stop")) {
      ChoiceDelta d = s.push(o);
      all += d.content;
      logprobs += d.logprobs.size();
    }
    EXPECT_EQ(all, include ? "done<|im_end|>" : "done");
    EXPECT_EQ(logprobs, include ? ids.size() : ids.size() - 1);
  }
}

TEST(ChoiceStream, ReasoningIsSplitTheSameStreamedOrWhole) {
  text::Tokenizer tok = tiny_tokenizer();
  text::ReasoningConfig rc;
  rc.starts_in_reasoning = true;
  std::vector<int32_t> ids =
      tok.encode("7*3 = 21\n21+1 = 22\n</think>\n\nThe answer is \\boxed{22}.");
  ids.push_back(kEos);  // "stop" without a stop string: the model drew end-of-sequence
  ChoiceStream s(tok, {.reasoning = rc});
  ChoiceDelta all;
  for (const auto& o : outputs_of(ids, 0, "stop")) {
    ChoiceDelta d = s.push(o);
    all.reasoning += d.reasoning;
    all.content += d.content;
    EXPECT_EQ(d.reasoning.find("</think"), std::string::npos);
  }
  EXPECT_EQ(all.reasoning, "7*3 = 21\n21+1 = 22");
  EXPECT_EQ(all.content, "The answer is \\boxed{22}.");
}

ResponseMeta meta(Endpoint e, bool stream) {
  return {.endpoint = e,
          .id = "chatcmpl-x",
          .created = 123,
          .model = "tiny",
          .stream = stream,
          .include_usage = true,
          .logprobs = false,
          .reasoning = e == Endpoint::kChatCompletions};
}

TEST(ResponseAssembler, ChatStreamHasTheOpenAiShape) {
  text::Tokenizer tok = tiny_tokenizer();
  text::ReasoningConfig rc;
  rc.starts_in_reasoning = true;
  ResponseAssembler a(meta(Endpoint::kChatCompletions, true), tok, {{.reasoning = rc}}, 2, {10});
  std::string sse = a.stream_start();
  std::vector<int32_t> ids0 = tok.encode("think\n</think>\n\nA");
  ids0.push_back(kEos);
  auto a0 = outputs_of(ids0, 0, "stop");
  auto a1 = outputs_of(tok.encode("hmm"), 1, "length");
  a0.back().usage.flops = 300;  // sample 0 ran the shared prompt
  a0.back().usage.nominal_flops = 400;
  a1.back().usage.flops = 50;
  a1.back().usage.nominal_flops = 350;
  for (size_t i = 0; i < std::max(a0.size(), a1.size()); ++i) {
    if (i < a0.size()) sse += a.push(0, a0[i]);
    if (i < a1.size()) sse += a.push(0, a1[i]);
  }
  ASSERT_TRUE(a.finished());
  sse += a.stream_end();
  std::vector<Json> chunks;
  size_t pos = 0;
  std::string last_data;
  while ((pos = sse.find("data: ", pos)) != std::string::npos) {
    size_t end = sse.find("\n\n", pos);
    last_data = sse.substr(pos + 6, end - pos - 6);
    if (last_data != "[DONE]") chunks.push_back(Json::parse(last_data));
    pos = end + 2;
  }
  EXPECT_EQ(last_data, "[DONE]");
  ASSERT_GE(chunks.size(), 4u);
  // Role chunks first, one per choice.
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(chunks[i]["choices"][0]["index"], i);
    EXPECT_EQ(chunks[i]["choices"][0]["delta"]["role"], "assistant");
  }
  std::string reasoning[2], content[2];
  int finishes[2] = {0, 0};
  for (size_t i = 0; i + 1 < chunks.size(); ++i) {
    const Json& c = chunks[i];
    EXPECT_EQ(c["id"], "chatcmpl-x");
    EXPECT_EQ(c["object"], "chat.completion.chunk");
    EXPECT_EQ(c["created"], 123);
    EXPECT_EQ(c["model"], "tiny");
    EXPECT_TRUE(c["usage"].is_null());
    ASSERT_EQ(c["choices"].size(), 1u);
    const Json& ch = c["choices"][0];
    const int idx = ch["index"];
    EXPECT_EQ(finishes[idx], 0) << "a chunk after the finish_reason of choice " << idx;
    if (ch["delta"].contains("reasoning_content"))
      reasoning[idx] += ch["delta"]["reasoning_content"];
    if (ch["delta"].contains("content")) content[idx] += ch["delta"]["content"];
    if (!ch["finish_reason"].is_null()) ++finishes[idx];
  }
  EXPECT_EQ(finishes[0], 1);
  EXPECT_EQ(finishes[1], 1);
  EXPECT_EQ(reasoning[0], "think");
  EXPECT_EQ(content[0], "A");
  EXPECT_EQ(reasoning[1], "hmm");
  EXPECT_EQ(content[1], "");
  const Json& usage_chunk = chunks.back();
  EXPECT_TRUE(usage_chunk["choices"].empty());
  EXPECT_EQ(usage_chunk["usage"]["prompt_tokens"], 10);
  EXPECT_EQ(usage_chunk["usage"]["completion_tokens"], static_cast<int64_t>(a0.size() + a1.size()));
  EXPECT_EQ(usage_chunk["usage"]["total_tokens"], static_cast<int64_t>(10 + a0.size() + a1.size()));
  EXPECT_EQ(usage_chunk["usage"]["flops"], 350.0);
  EXPECT_EQ(usage_chunk["usage"]["nominal_flops"], 750.0);
}

TEST(ResponseAssembler, WholeChatResponse) {
  text::Tokenizer tok = tiny_tokenizer();
  text::ReasoningConfig rc;
  rc.starts_in_reasoning = true;
  ResponseMeta m = meta(Endpoint::kChatCompletions, false);
  m.logprobs = true;
  ResponseAssembler a(m, tok, {{.reasoning = rc, .logprobs = true}}, 1, {7});
  auto outs = outputs_of(tok.encode("r</think>c"), 0, "length");
  outs[0].logprobs = {NAN};  // an engine-inserted token
  outs[0].top_logprobs = {{{.token = 5, .logprob = -0.1f}, {.token = 6, .logprob = -2.0f}}};
  for (auto& o : outs) o.usage.thinking_tokens = o.finished ? 2 : 0;
  outs.back().usage.cached_prompt_tokens = 4;
  for (const auto& o : outs) EXPECT_EQ(a.push(0, o), "");
  auto r = a.response();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ((*r)["object"], "chat.completion");
  const Json& c = (*r)["choices"][0];
  EXPECT_EQ(c["message"]["role"], "assistant");
  EXPECT_EQ(c["message"]["reasoning_content"], "r");
  EXPECT_EQ(c["message"]["content"], "c");
  EXPECT_EQ(c["finish_reason"], "length");
  const Json& lp = c["logprobs"]["content"];
  ASSERT_EQ(lp.size(), outs.size());
  EXPECT_TRUE(lp[0]["logprob"].is_null());
  EXPECT_EQ(lp[0]["token"], "r");
  EXPECT_EQ(lp[0]["bytes"], Json::array({114}));
  ASSERT_EQ(lp[0]["top_logprobs"].size(), 2u);
  EXPECT_EQ(lp[0]["top_logprobs"][0]["token"], "!");
  EXPECT_FLOAT_EQ(lp[0]["top_logprobs"][0]["logprob"].get<float>(), -0.1f);
  EXPECT_FLOAT_EQ(lp[1]["logprob"].get<float>(), -0.5f);
  const Json& u = (*r)["usage"];
  EXPECT_EQ(u["prompt_tokens"], 7);
  EXPECT_EQ(u["completion_tokens"], static_cast<int64_t>(outs.size()));
  EXPECT_EQ(u["prompt_tokens_details"]["cached_tokens"], 4);
  EXPECT_EQ(u["completion_tokens_details"]["reasoning_tokens"], 2);
}

TEST(ResponseAssembler, CompletionsWithSeveralPromptsAndLogprobs) {
  text::Tokenizer tok = tiny_tokenizer();
  ResponseMeta m = meta(Endpoint::kCompletions, false);
  m.logprobs = true;
  m.id = "cmpl-y";
  ResponseAssembler a(m, tok, {{.logprobs = true}, {.logprobs = true}}, 2, {3, 5});
  const std::vector<std::string> texts = {"a1", "a2", "b1", "b2"};
  for (int p = 0; p < 2; ++p)
    for (int i = 0; i < 2; ++i)
      for (auto& o : outputs_of(tok.encode(texts[p * 2 + i]), i)) {
        // Forked samples report the shared prompt as cached; the first sample's figure counts.
        if (o.finished) {
          o.usage.cached_prompt_tokens = p == 0 ? 2 + i : i * 5;
          o.usage.flops = i == 0 ? 100 : 10;  // sample 0 ran the prompt
          o.usage.nominal_flops = 1000 * (p + 1) + i;
        }
        a.push(p, o);
      }
  auto r = a.response();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ((*r)["object"], "text_completion");
  ASSERT_EQ((*r)["choices"].size(), 4u);
  for (int i = 0; i < 4; ++i) {
    const Json& c = (*r)["choices"][i];
    EXPECT_EQ(c["index"], i);
    EXPECT_EQ(c["text"], texts[i]);
    const Json& lp = c["logprobs"];
    ASSERT_EQ(lp["tokens"].size(), lp["token_logprobs"].size());
    ASSERT_EQ(lp["tokens"].size(), lp["text_offset"].size());
    ASSERT_EQ(lp["tokens"].size(), lp["top_logprobs"].size());
    std::string joined;
    for (size_t t = 0; t < lp["tokens"].size(); ++t) {
      EXPECT_EQ(lp["text_offset"][t], static_cast<int64_t>(joined.size()));
      joined += lp["tokens"][t].get<std::string>();
    }
    EXPECT_EQ(joined, texts[i]);
  }
  EXPECT_EQ((*r)["usage"]["prompt_tokens"], 8);
  EXPECT_EQ((*r)["usage"]["prompt_tokens_details"]["cached_tokens"], 2);  // 2 + 0
  // Nominal FLOPs per choice and summed; executed FLOPs only for the request.
  for (int i = 0; i < 4; ++i) {
    const Json& u = (*r)["choices"][i]["usage"];
    EXPECT_EQ(u["nominal_flops"], 1000.0 * (i / 2 + 1) + i % 2) << i;
    EXPECT_FALSE(u.contains("flops")) << i;
  }
  EXPECT_EQ((*r)["usage"]["nominal_flops"], 1000.0 + 1001 + 2000 + 2001);
  EXPECT_EQ((*r)["usage"]["flops"], 220.0);
}

TEST(ResponseAssembler, FailedSamplesBecomeErrors) {
  text::Tokenizer tok = tiny_tokenizer();
  {
    ResponseAssembler a(meta(Endpoint::kCompletions, false), tok, {{}}, 1, {1});
    auto outs = outputs_of(tok.encode("x"), 0, "error");
    outs.back().error = "replica lost";
    a.push(0, outs.back());
    ASSERT_TRUE(a.finished());
    auto r = a.response();
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().status, 500);
    EXPECT_NE(r.error().message.find("replica lost"), std::string::npos);
  }
  {
    ResponseAssembler a(meta(Endpoint::kChatCompletions, true), tok, {{}}, 1, {1});
    auto outs = outputs_of(tok.encode("x"), 0, "cancelled");
    std::string sse = a.push(0, outs.back());
    EXPECT_NE(sse.find("\"error\""), std::string::npos);
    EXPECT_EQ(a.error()->status, 503);
    EXPECT_NE(a.stream_end().find("data: [DONE]"), std::string::npos);
  }
}

// Tool calls (Hermes format) on a real tokenizer's tokens: the whole response and the stream
// carry the same calls, content and finish_reason; a call inside the thinking is not a call.
std::vector<Json> sse_chunks(const std::string& sse) {
  std::vector<Json> chunks;
  size_t pos = 0;
  while ((pos = sse.find("data: ", pos)) != std::string::npos) {
    size_t end = sse.find("\n\n", pos);
    const std::string data = sse.substr(pos + 6, end - pos - 6);
    if (data != "[DONE]") chunks.push_back(Json::parse(data));
    pos = end + 2;
  }
  return chunks;
}

ChoiceOptions tool_options(bool parallel = true) {
  text::ReasoningConfig rc;
  rc.starts_in_reasoning = true;
  return {.reasoning = rc,
          .tool_calls = ChoiceOptions::ToolCalls{.format = text::ToolCallFormat::kHermes,
                                                 .functions = {"get_weather", "search"},
                                                 .parallel = parallel}};
}

// Runs `text` (then end-of-sequence when `reason` is "stop") through a whole and a streamed
// assembler; returns the whole response's choice and the streamed message rebuilt from deltas.
std::pair<Json, Json> whole_and_streamed(const std::string& text, const std::string& reason,
                                         const ChoiceOptions& options) {
  text::Tokenizer tok = tiny_tokenizer();
  std::vector<int32_t> ids = tok.encode(text);
  if (reason == "stop") ids.push_back(kEos);
  ResponseAssembler whole(meta(Endpoint::kChatCompletions, false), tok, {options}, 1, {5});
  ResponseAssembler streamed(meta(Endpoint::kChatCompletions, true), tok, {options}, 1, {5});
  std::string sse = streamed.stream_start();
  for (const auto& o : outputs_of(ids, 0, reason)) {
    whole.push(0, o);
    sse += streamed.push(0, o);
  }
  sse += streamed.stream_end();
  auto r = whole.response();
  EXPECT_TRUE(r.has_value());
  Json rebuilt = {{"content", ""}, {"reasoning_content", ""}, {"tool_calls", Json::array()}};
  int finishes = 0;
  for (const Json& c : sse_chunks(sse)) {
    if (c["choices"].empty()) continue;
    const Json& ch = c["choices"][0];
    EXPECT_EQ(finishes, 0) << "a chunk after the finish: " << c.dump();
    const Json& d = ch["delta"];
    if (d.contains("content"))
      rebuilt["content"] = rebuilt["content"].get<std::string>() + d["content"].get<std::string>();
    if (d.contains("reasoning_content"))
      rebuilt["reasoning_content"] = rebuilt["reasoning_content"].get<std::string>() +
                                     d["reasoning_content"].get<std::string>();
    if (d.contains("tool_calls")) {
      for (const Json& t : d["tool_calls"]) {
        const size_t i = t["index"];
        Json& calls = rebuilt["tool_calls"];
        if (i == calls.size()) {
          // A new call opens with its id, type and name (and empty arguments), as OpenAI's do.
          EXPECT_TRUE(t.contains("id") && t.contains("type") && t["function"].contains("name"))
              << t.dump();
          calls.push_back({{"id", t["id"]},
                           {"type", t["type"]},
                           {"function", {{"name", t["function"]["name"]}, {"arguments", ""}}}});
        }
        EXPECT_LT(i, calls.size()) << "tool call index skipped: " << t.dump();
        if (i < calls.size() && t["function"].contains("arguments") && !t.contains("id"))
          calls[i]["function"]["arguments"] = calls[i]["function"]["arguments"].get<std::string>() +
                                              t["function"]["arguments"].get<std::string>();
      }
    }
    if (!ch["finish_reason"].is_null()) {
      ++finishes;
      rebuilt["finish_reason"] = ch["finish_reason"];
    }
  }
  EXPECT_EQ(finishes, 1);
  return {(*r)["choices"][0], rebuilt};
}

TEST(ResponseAssembler, ToolCallsStreamedAndWholeAgree) {
  const std::string text =
      "Maybe <tool_call>{\"name\": \"search\"}</tool_call> here?\n</think>\n\nLet me check."
      "\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n"
      "</tool_call>\n<tool_call>\n{\"name\": \"search\", \"arguments\": {\"q\": \"x\"}}\n"
      "</tool_call>";
  auto [whole, streamed] = whole_and_streamed(text, "stop", tool_options());
  const Json& m = whole["message"];
  EXPECT_EQ(whole["finish_reason"], "tool_calls");
  EXPECT_EQ(m["content"], "Let me check.\n");
  EXPECT_EQ(m["reasoning_content"], "Maybe <tool_call>{\"name\": \"search\"}</tool_call> here?");
  ASSERT_EQ(m["tool_calls"].size(), 2u);
  EXPECT_EQ(m["tool_calls"][0]["type"], "function");
  EXPECT_EQ(m["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(m["tool_calls"][0]["function"]["arguments"], R"({"city":"Paris"})");
  EXPECT_EQ(m["tool_calls"][1]["function"]["name"], "search");
  EXPECT_NE(m["tool_calls"][0]["id"], m["tool_calls"][1]["id"]);
  // call_<the response id's random part>_<choice>_<call>: unique within the response.
  EXPECT_EQ(m["tool_calls"][0]["id"], "call_x_0_0");
  EXPECT_EQ(m["tool_calls"][1]["id"], "call_x_0_1");
  EXPECT_EQ(streamed["content"], m["content"]);
  EXPECT_EQ(streamed["reasoning_content"], m["reasoning_content"]);
  EXPECT_EQ(streamed["tool_calls"], m["tool_calls"]);
  EXPECT_EQ(streamed["finish_reason"], "tool_calls");
}

TEST(ResponseAssembler, OnlyACallMakesContentNull) {
  auto [whole, streamed] =
      whole_and_streamed("</think><tool_call>{\"name\": \"search\", \"arguments\": {}}</tool_call>",
                         "stop", tool_options());
  EXPECT_TRUE(whole["message"]["content"].is_null());
  ASSERT_EQ(whole["message"]["tool_calls"].size(), 1u);
  EXPECT_EQ(whole["message"]["tool_calls"][0]["function"]["arguments"], "{}");
  EXPECT_EQ(streamed["tool_calls"], whole["message"]["tool_calls"]);
}

TEST(ResponseAssembler, MalformedCallsAreContentWithFinishStop) {
  for (const std::string& call :
       {std::string("<tool_call>{\"name\": \"search\", \"arguments\": {\"q\": }</tool_call>"),
        std::string("<tool_call>{\"name\": \"delete_everything\"}</tool_call>"),
        std::string("<tool_call>not json</tool_call>")}) {
    auto [whole, streamed] = whole_and_streamed("</think>" + call, "stop", tool_options());
    EXPECT_EQ(whole["finish_reason"], "stop") << call;
    EXPECT_EQ(whole["message"]["content"], call);
    EXPECT_FALSE(whole["message"].contains("tool_calls")) << call;
    EXPECT_EQ(streamed["content"], call);
    EXPECT_TRUE(streamed["tool_calls"].empty());
    EXPECT_EQ(streamed["finish_reason"], "stop");
  }
}

TEST(ResponseAssembler, ACallCutByTheTokenLimitIsContent) {
  const std::string text = "</think><tool_call>{\"name\": \"search\", \"argu";
  auto [whole, streamed] = whole_and_streamed(text, "length", tool_options());
  EXPECT_EQ(whole["finish_reason"], "length");
  EXPECT_EQ(whole["message"]["content"], "<tool_call>{\"name\": \"search\", \"argu");
  EXPECT_EQ(streamed["content"], whole["message"]["content"]);
}

TEST(ResponseAssembler, ParallelToolCallsFalseKeepsTheFirst) {
  const std::string text =
      "</think><tool_call>{\"name\": \"search\"}</tool_call><tool_call>{\"name\": "
      "\"get_weather\"}</tool_call>";
  auto [whole, streamed] = whole_and_streamed(text, "stop", tool_options(false));
  ASSERT_EQ(whole["message"]["tool_calls"].size(), 1u);
  EXPECT_EQ(whole["message"]["tool_calls"][0]["function"]["name"], "search");
  EXPECT_EQ(streamed["tool_calls"], whole["message"]["tool_calls"]);
}

}  // namespace
}  // namespace ponder::coordinator::api
