// HttpServer end to end: a real server on an ephemeral loopback port in front of a real
// InProcessDispatcher running the bundled tiny reasoner, driven by a real HTTP client. The
// model's text may change when it is retrained, so these tests assert structure and consistency
// (streamed = whole, greedy twice equal, sample i of n = the request with seed + i, token
// counts, finish reasons), never the model's words.
#include "coordinator/http/http_server.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <cmath>
#include <future>
#include <set>
#include <thread>

#include "coordinator/replicas/in_process_dispatcher.h"
#include "coordinator/text/reasoning_parser.h"
#include "worker/kv_cache.h"
#include "http_test_client.h"
#include "tiny_model_fixture.h"
#include "slow_dispatcher.h"
#include "prometheus_check.h"

namespace ponder::coordinator::http {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;
using testing::http_request;
using testing::HttpReply;
using testing::post_json;
using testing::sse_data;
using testing::TestConnection;

const std::string kModelDir = testing::kTinyModelDir;
const std::string kQuestion = "What is 17+25?";

Json user_messages(const std::string& content = kQuestion) {
  return Json::array({{{"role", "user"}, {"content", content}}});
}

Json chat_body(Json extra = Json::object(), const std::string& content = kQuestion) {
  Json b = {{"model", "tiny-reasoner"}, {"messages", user_messages(content)}};
  for (auto& [k, v] : extra.items()) b[k] = v;
  return b;
}

// A streamed response: its chunks (JSON), whether it ended with [DONE], and per-choice text.
struct Streamed {
  int status = 0;
  std::string content_type;
  std::vector<Json> chunks;
  bool done = false;
  std::map<int, std::string> reasoning, content, text, finish;
  std::optional<Json> usage;
  std::optional<Json> error;
};

Streamed parse_stream(const HttpReply& r) {
  Streamed s;
  s.status = r.status;
  s.content_type = r.header("content-type");
  std::vector<std::string> data = sse_data(r.body);
  for (size_t i = 0; i < data.size(); ++i) {
    if (data[i] == "[DONE]") {
      EXPECT_EQ(i + 1, data.size()) << "[DONE] is not the last event";
      s.done = true;
      continue;
    }
    Json c = Json::parse(data[i]);
    if (c.contains("error")) {
      s.error = c;
      continue;
    }
    s.chunks.push_back(c);
    if (c.contains("usage") && !c["usage"].is_null()) s.usage = c["usage"];
    for (const Json& ch : c["choices"]) {
      const int idx = ch["index"];
      EXPECT_FALSE(s.finish.count(idx)) << "a chunk after choice " << idx << "'s finish_reason";
      if (ch.contains("delta")) {
        if (ch["delta"].contains("reasoning_content"))
          s.reasoning[idx] += ch["delta"]["reasoning_content"].get<std::string>();
        if (ch["delta"].contains("content"))
          s.content[idx] += ch["delta"]["content"].get<std::string>();
      }
      if (ch.contains("text")) s.text[idx] += ch["text"].get<std::string>();
      if (!ch["finish_reason"].is_null()) s.finish[idx] = ch["finish_reason"];
    }
  }
  return s;
}

using testing::SlowDispatcher;

// No replica to take anything.
class UnavailableDispatcher final : public Dispatcher {
 public:
  Expected<int64_t> submit(worker::EngineRequest, OutputFn) override {
    return error(StatusCode::kUnavailable, "1024 requests in flight: the queue is full");
  }
  void cancel(int64_t) override {}
  DispatcherStats stats() const override {
    return {.replicas = 2, .healthy_replicas = healthy.load()};
  }
  std::atomic<int64_t> healthy{0};
};

class HttpServerTest : public testing::TinyModelFixture {
 protected:

  void SetUp() override {
    ASSERT_TRUE(wait_idle()) << "a previous test left requests in flight";
    server_ = start();
  }
  void TearDown() override {
    if (server_) server_->stop(5s);
  }

  std::unique_ptr<HttpServer> start(ServerOptions o = {}, Dispatcher* d = nullptr) {
    o.port = 0;
    auto s = HttpServer::start(std::move(o), *model_, d ? *d : *dispatcher_);
    EXPECT_TRUE(s.has_value()) << s.error().to_string();
    return s ? std::move(*s) : nullptr;
  }
  uint16_t port() const { return server_->port(); }
  HttpReply post(const std::string& target, const Json& body) {
    return post_json(port(), target, body);
  }
  HttpReply chat(Json extra = Json::object()) {
    return post("/v1/chat/completions", chat_body(extra));
  }

  // The rendered chat prompt of kQuestion and its token count.
  static std::string rendered_prompt(Json kwargs = nullptr) {
    auto r = model_->chat_template->render(nlohmann::ordered_json(user_messages()), true,
                                           nlohmann::ordered_json(kwargs));
    EXPECT_TRUE(r.has_value());
    return *r;
  }


  std::unique_ptr<HttpServer> server_;
};


void expect_error_shape(const HttpReply& r, int status, const std::string& param,
                        const std::string& code) {
  EXPECT_EQ(r.status, status) << r.body;
  EXPECT_EQ(r.header("content-type"), "application/json");
  Json j = r.json();
  ASSERT_TRUE(j.is_object() && j.contains("error")) << r.body;
  const Json& e = j["error"];
  EXPECT_TRUE(e["message"].is_string() && !e["message"].get<std::string>().empty());
  EXPECT_TRUE(e["type"].is_string());
  if (param.empty()) {
    EXPECT_TRUE(e["param"].is_null()) << r.body;
  } else {
    EXPECT_EQ(e["param"], param) << r.body;
  }
  if (!code.empty()) {
    EXPECT_EQ(e["code"], code) << r.body;
  }
}

TEST_F(HttpServerTest, ListsTheModel) {
  HttpReply r = http_request(port(), "GET", "/v1/models");
  ASSERT_EQ(r.status, 200);
  Json j = r.json();
  EXPECT_EQ(j["object"], "list");
  ASSERT_EQ(j["data"].size(), 1u);
  EXPECT_EQ(j["data"][0]["id"], "tiny-reasoner");
  EXPECT_EQ(j["data"][0]["object"], "model");
  EXPECT_EQ(j["data"][0]["max_model_len"], 1024);
  EXPECT_EQ(http_request(port(), "GET", "/v1/models/tiny-reasoner").status, 200);
  expect_error_shape(http_request(port(), "GET", "/v1/models/gpt-9"), 404, "model",
                     "model_not_found");
}

TEST_F(HttpServerTest, ChatCompletionSplitsReasoningFromContent) {
  HttpReply r = chat({{"temperature", 0}, {"max_tokens", 300}});
  ASSERT_EQ(r.status, 200) << r.body;
  Json j = r.json();
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["model"], "tiny-reasoner");
  EXPECT_EQ(j["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  ASSERT_EQ(j["choices"].size(), 1u);
  const Json& c = j["choices"][0];
  EXPECT_EQ(c["index"], 0);
  EXPECT_EQ(c["message"]["role"], "assistant");
  const std::string reasoning = c["message"]["reasoning_content"],
                    content = c["message"]["content"];
  EXPECT_FALSE(reasoning.empty()) << "the template opens <think>: the model starts by thinking";
  for (const std::string* s : {&reasoning, &content}) {
    EXPECT_EQ(s->find("<think>"), std::string::npos);
    EXPECT_EQ(s->find("</think>"), std::string::npos);
  }
  EXPECT_TRUE(c["finish_reason"] == "stop" || c["finish_reason"] == "length");
  const Json& u = j["usage"];
  const std::string prompt = rendered_prompt();
  EXPECT_EQ(u["prompt_tokens"], model_->tokenizer.encode(prompt).size());
  EXPECT_GT(u["completion_tokens"], 0);
  EXPECT_EQ(u["total_tokens"],
            u["prompt_tokens"].get<int64_t>() + u["completion_tokens"].get<int64_t>());
  EXPECT_GE(u["prompt_tokens_details"]["cached_tokens"], 0);
  EXPECT_GT(u["completion_tokens_details"]["reasoning_tokens"], 0);
  EXPECT_LE(u["completion_tokens_details"]["reasoning_tokens"], u["completion_tokens"]);

  // The same prompt through /v1/completions gives the raw text; the reasoning parser's split
  // of it is what the chat endpoint answered.
  HttpReply raw =
      post("/v1/completions", {{"prompt", prompt}, {"temperature", 0}, {"max_tokens", 300}});
  ASSERT_EQ(raw.status, 200) << raw.body;
  Json rj = raw.json();
  EXPECT_EQ(rj["object"], "text_completion");
  text::ReasoningConfig rc;
  rc.starts_in_reasoning = true;
  text::ReasoningSplit split =
      text::ReasoningParser::parse(rj["choices"][0]["text"].get<std::string>(), rc);
  EXPECT_EQ(split.reasoning, reasoning);
  EXPECT_EQ(split.content, content);
  EXPECT_EQ(rj["usage"]["completion_tokens"], u["completion_tokens"]);
  EXPECT_EQ(rj["choices"][0]["finish_reason"], c["finish_reason"]);
}

TEST_F(HttpServerTest, GreedyTwiceGivesTheSameAnswer) {
  Json a = chat({{"temperature", 0}, {"max_tokens", 120}}).json();
  Json b = chat({{"temperature", 0}, {"max_tokens", 120}}).json();
  EXPECT_EQ(a["choices"], b["choices"]);
  EXPECT_NE(a["id"], b["id"]);
}

TEST_F(HttpServerTest, StreamedChatEqualsTheWholeResponse) {
  Json params = {{"temperature", 0.9}, {"seed", 11}, {"n", 2}, {"max_tokens", 150}};
  HttpReply whole = chat(params);
  ASSERT_EQ(whole.status, 200) << whole.body;
  Json w = whole.json();
  Json sp = params;
  sp["stream"] = true;
  sp["stream_options"] = {{"include_usage", true}};
  Streamed s = parse_stream(chat(sp));
  ASSERT_EQ(s.status, 200);
  EXPECT_EQ(s.content_type, "text/event-stream");
  EXPECT_TRUE(s.done);
  EXPECT_FALSE(s.error.has_value());
  ASSERT_GE(s.chunks.size(), 3u);
  const std::string id = s.chunks[0]["id"];
  for (int i = 0; i < 2; ++i) {
    // Each choice's first chunk carries the role.
    EXPECT_EQ(s.chunks[i]["choices"][0]["index"], i);
    EXPECT_EQ(s.chunks[i]["choices"][0]["delta"]["role"], "assistant");
  }
  for (const Json& c : s.chunks) {
    EXPECT_EQ(c["object"], "chat.completion.chunk");
    EXPECT_EQ(c["id"], id);
    EXPECT_EQ(c["model"], "tiny-reasoner");
  }
  for (int i = 0; i < 2; ++i) {
    const Json& m = w["choices"][i]["message"];
    EXPECT_EQ(s.reasoning[i], m["reasoning_content"].get<std::string>()) << "choice " << i;
    EXPECT_EQ(s.content[i], m["content"].get<std::string>()) << "choice " << i;
    EXPECT_EQ(s.finish[i], w["choices"][i]["finish_reason"].get<std::string>());
  }
  // The usage chunk: last before [DONE], with no choices, equal to the whole response's usage
  // (the prompt is cached the second time round, so cached_tokens may differ).
  ASSERT_TRUE(s.usage.has_value());
  EXPECT_TRUE(s.chunks.back()["choices"].empty());
  EXPECT_EQ((*s.usage)["completion_tokens"], w["usage"]["completion_tokens"]);
  EXPECT_EQ((*s.usage)["prompt_tokens"], w["usage"]["prompt_tokens"]);
  EXPECT_EQ((*s.usage)["completion_tokens_details"], w["usage"]["completion_tokens_details"]);
}

TEST_F(HttpServerTest, StreamedCompletionEqualsTheWholeResponse) {
  Json body = {
      {"prompt", rendered_prompt()}, {"temperature", 0.7}, {"seed", 3}, {"max_tokens", 80}};
  Json w = post("/v1/completions", body).json();
  body["stream"] = true;
  Streamed s = parse_stream(post("/v1/completions", body));
  ASSERT_EQ(s.status, 200);
  EXPECT_TRUE(s.done);
  EXPECT_FALSE(s.usage.has_value());  // not asked for
  for (const Json& c : s.chunks) {
    EXPECT_EQ(c["object"], "text_completion");
    EXPECT_FALSE(c.contains("usage"));
  }
  EXPECT_EQ(s.text[0], w["choices"][0]["text"].get<std::string>());
  EXPECT_EQ(s.finish[0], w["choices"][0]["finish_reason"].get<std::string>());
}

TEST_F(HttpServerTest, NSamplesWithASeedDifferAndReproduce) {
  // A hard question, where the tiny model is unsure enough for samples to differ.
  const std::string hard = "What is 4821*37-999?";
  auto ask = [&](int64_t seed, int n) {
    return post(
        "/v1/chat/completions",
        chat_body({{"temperature", 1.2}, {"seed", seed}, {"n", n}, {"max_tokens", 60}}, hard));
  };
  HttpReply r = ask(5, 4);
  ASSERT_EQ(r.status, 200) << r.body;
  Json j = r.json();
  ASSERT_EQ(j["choices"].size(), 4u);
  std::set<std::string> distinct;
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(j["choices"][i]["index"], i);
    distinct.insert(j["choices"][i]["message"].dump());
  }
  EXPECT_GE(distinct.size(), 2u) << "four samples at temperature 1.2 were all the same";
  Json again = ask(5, 4).json();
  EXPECT_EQ(again["choices"], j["choices"]);
  // Sample i of n draws with seed + i: the single request with that seed gives it.
  Json third = ask(7, 1).json();
  EXPECT_EQ(third["choices"][0]["message"], j["choices"][2]["message"]);
  EXPECT_EQ(third["choices"][0]["finish_reason"], j["choices"][2]["finish_reason"]);
  // Usage: the prompt once, the samples' tokens added up.
  int64_t prompt = j["usage"]["prompt_tokens"];
  EXPECT_EQ(prompt, static_cast<int64_t>(third["usage"]["prompt_tokens"]));
  EXPECT_EQ(j["usage"]["total_tokens"], prompt + j["usage"]["completion_tokens"].get<int64_t>());
  // Cached: what the prefix cache held for the prompt (at most its full blocks before the last
  // token), not the prompt blocks the samples share with each other.
  EXPECT_LT(again["usage"]["prompt_tokens_details"]["cached_tokens"], prompt);
}

TEST_F(HttpServerTest, NSamplesCountTheirTokens) {
  // With logprobs, each choice lists its tokens (all but a final end-of-sequence token).
  Json j =
      chat({{"temperature", 1.0}, {"seed", 9}, {"n", 3}, {"max_tokens", 40}, {"logprobs", true}})
          .json();
  int64_t tokens = 0;
  for (const Json& c : j["choices"])
    tokens += static_cast<int64_t>(c["logprobs"]["content"].size()) +
              (c["finish_reason"] == "stop" ? 1 : 0);
  EXPECT_EQ(j["usage"]["completion_tokens"], tokens);
}

TEST_F(HttpServerTest, StopStringsAreCutStreamedOrNot) {
  const std::string prompt = rendered_prompt();
  Json base = {{"prompt", prompt}, {"temperature", 0}, {"max_tokens", 60}};
  const std::string full = post("/v1/completions", base).json()["choices"][0]["text"];
  ASSERT_GE(full.size(), 12u);
  // Three characters from the middle: they span token boundaries.
  const std::string stop = full.substr(full.size() / 2, 3);
  const std::string before = full.substr(0, full.find(stop));

  Json with_stop = base;
  with_stop["stop"] = Json::array({stop, "never-appears"});
  Json j = post("/v1/completions", with_stop).json();
  EXPECT_EQ(j["choices"][0]["text"], before);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(j["choices"][0]["stop_reason"], stop);

  with_stop["include_stop_str_in_output"] = true;
  j = post("/v1/completions", with_stop).json();
  EXPECT_EQ(j["choices"][0]["text"], before + stop);

  with_stop["include_stop_str_in_output"] = false;
  with_stop["stream"] = true;
  Streamed s = parse_stream(post("/v1/completions", with_stop));
  EXPECT_EQ(s.text[0], before);
  EXPECT_EQ(s.finish[0], "stop");
  for (const Json& c : s.chunks)
    for (const Json& ch : c["choices"])
      EXPECT_EQ(ch["text"].get<std::string>().find(stop), std::string::npos);
}

TEST_F(HttpServerTest, StopStringAcrossASkippedSpecialTokenEndsTheChoiceEarly) {
  // The engine matches stop strings on raw token bytes, special tokens included; the text a
  // client sees has them skipped. A stop string that only exists in the skipped text is found by
  // the server, which then cancels the rest of the generation.
  const std::string prompt = rendered_prompt();
  Json raw_body = {{"prompt", prompt},
                   {"temperature", 0},
                   {"max_tokens", 200},
                   {"ignore_eos", true},
                   {"skip_special_tokens", false}};
  const std::string raw = post("/v1/completions", raw_body).json()["choices"][0]["text"];
  const std::string eos = "<|im_end|>";
  const size_t k = raw.find(eos);
  if (k == std::string::npos || k < 2 || k + eos.size() + 2 > raw.size())
    GTEST_SKIP() << "the model wrote no end-of-sequence token in the middle of its output";
  const std::string stop = raw.substr(k - 2, 2) + raw.substr(k + eos.size(), 2);
  if (stop.find('<') != std::string::npos || raw.find(stop) != std::string::npos)
    GTEST_SKIP() << "no stop string that only the skipped text holds";
  std::string clean = raw;
  for (const char* special : {"<|im_end|>", "<|im_start|>", "<|endoftext|>"})
    for (size_t p = clean.find(special); p != std::string::npos; p = clean.find(special))
      clean.erase(p, std::string(special).size());
  const std::string before = clean.substr(0, clean.find(stop));

  SlowDispatcher slow(*dispatcher_, 2ms);
  auto s = start({}, &slow);
  Json j = post_json(s->port(), "/v1/completions",
                     {{"prompt", prompt},
                      {"temperature", 0},
                      {"max_tokens", 900},
                      {"ignore_eos", true},
                      {"stop", stop}})
               .json();
  EXPECT_EQ(j["choices"][0]["text"], before);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(j["choices"][0]["stop_reason"], stop);
  EXPECT_LT(j["usage"]["completion_tokens"], 900) << "the generation was not cut short";
  s->stop(1s);
}

TEST_F(HttpServerTest, SamplingControlsReachTheEngine) {
  // logit_bias: banning the greedy first token changes it.
  Json greedy = {{"prompt", "12+30="}, {"temperature", 0}, {"max_tokens", 1}, {"logprobs", 0}};
  Json first = post("/v1/completions", greedy).json();
  const std::string t0 = first["choices"][0]["logprobs"]["tokens"][0];
  std::vector<int32_t> ids = model_->tokenizer.encode(t0);
  ASSERT_EQ(ids.size(), 1u);
  Json banned = greedy;
  banned["logit_bias"] = {{std::to_string(ids[0]), -100}};
  EXPECT_NE(post("/v1/completions", banned).json()["choices"][0]["logprobs"]["tokens"][0], t0);

  // stop_token_ids: the choice ends at that token, which is left out of the text.
  Json plain = chat({{"temperature", 0}, {"max_tokens", 60}, {"logprobs", true}}).json();
  const Json& content = plain["choices"][0]["logprobs"]["content"];
  ASSERT_GE(content.size(), 4u);
  const std::vector<int32_t> third =
      model_->tokenizer.encode(content[2]["token"].get<std::string>());
  ASSERT_EQ(third.size(), 1u);
  Json stopped =
      chat({{"temperature", 0}, {"max_tokens", 60}, {"stop_token_ids", {third[0]}}}).json();
  EXPECT_EQ(stopped["choices"][0]["finish_reason"], "stop");
  EXPECT_LE(stopped["usage"]["completion_tokens"], 3);

  // min_tokens: no end-of-sequence before that many tokens.
  const int64_t natural = plain["usage"]["completion_tokens"];
  if (plain["choices"][0]["finish_reason"] == "stop") {
    Json longer =
        chat({{"temperature", 0}, {"max_tokens", natural + 20}, {"min_tokens", natural + 10}})
            .json();
    EXPECT_GE(longer["usage"]["completion_tokens"], natural + 10);
  }
}

TEST_F(HttpServerTest, MaxTokensEndsWithLength) {
  Json j = chat({{"max_tokens", 5}, {"ignore_eos", true}}).json();
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["usage"]["completion_tokens"], 5);
  Json k = post("/v1/completions",
                {{"prompt", "1+1="}, {"max_completion_tokens", 3}, {"ignore_eos", true}})
               .json();
  EXPECT_EQ(k["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(k["usage"]["completion_tokens"], 3);
}

// A KV cache smaller than the context: a chat request without max_tokens gets the largest
// completion that fits with its prompt; an explicit max_tokens that does not fit is refused
// naming the field, as is a prompt that fills the cache.
TEST_F(HttpServerTest, DefaultMaxTokensFitsASmallKvCache) {
  auto small = InProcessDispatcher::create({.model_dir = kModelDir,
                                            .threads = 1,
                                            .kv_cache_bytes = 600000,  // 8 blocks of 16 tokens
                                            .engine = model_->engine_options()});
  ASSERT_TRUE(small.has_value()) << small.error().to_string();
  const int64_t kv_tokens = (*small)->kv_blocks() * worker::KvCacheConfig{}.block_size;
  ASSERT_LT(kv_tokens, 1024);
  auto s = start({.kv_cache_tokens = kv_tokens}, small->get());
  HttpReply r = post_json(s->port(), "/v1/chat/completions", chat_body({{"ignore_eos", true}}));
  ASSERT_EQ(r.status, 200) << r.body;
  Json j = r.json();
  const int64_t prompt = j["usage"]["prompt_tokens"];
  EXPECT_EQ(j["usage"]["completion_tokens"], kv_tokens - prompt);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  HttpReply too_many = post_json(s->port(), "/v1/chat/completions",
                                 chat_body({{"max_tokens", kv_tokens - prompt + 1}}));
  expect_error_shape(too_many, 400, "max_tokens", "context_length_exceeded");
  EXPECT_NE(too_many.json()["error"]["message"].get<std::string>().find("KV cache"),
            std::string::npos)
      << too_many.body;
  expect_error_shape(post_json(s->port(), "/v1/chat/completions",
                               chat_body({}, std::string(static_cast<size_t>(kv_tokens), '7'))),
                     400, "messages", "context_length_exceeded");
  Json k = post_json(s->port(), "/v1/completions", {{"prompt", "1+1="}, {"ignore_eos", true}})
               .json();
  EXPECT_EQ(k["usage"]["completion_tokens"], 16);
  s->stop(1s);
}

TEST_F(HttpServerTest, CompletionsDefaultToSixteenTokens) {
  Json k = post("/v1/completions", {{"prompt", "1+1="}, {"ignore_eos", true}}).json();
  EXPECT_EQ(k["usage"]["completion_tokens"], 16);
}

TEST_F(HttpServerTest, ChatLogprobsHaveTheOpenAiShape) {
  Json j = chat({{"temperature", 0},
                 {"max_tokens", 20},
                 {"ignore_eos", true},
                 {"logprobs", true},
                 {"top_logprobs", 3}})
               .json();
  const Json& content = j["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 20u);
  EXPECT_EQ(j["usage"]["completion_tokens"], 20);
  bool any_top = false;
  for (const Json& e : content) {
    ASSERT_TRUE(e["token"].is_string());
    ASSERT_TRUE(e["logprob"].is_number());
    EXPECT_LE(e["logprob"].get<double>(), 0.0);
    std::string bytes;
    for (const Json& b : e["bytes"]) bytes += static_cast<char>(b.get<int>());
    // The raw bytes are the token's text unless the token is part of a character (U+FFFD).
    if (e["token"].get<std::string>().find("\uFFFD") == std::string::npos) {
      EXPECT_EQ(bytes, e["token"].get<std::string>());
    }
    const Json& top = e["top_logprobs"];
    if (top.empty()) continue;  // engine-filled alternatives (empty for inserted tokens)
    any_top = true;
    ASSERT_EQ(top.size(), 3u);
    for (size_t i = 1; i < top.size(); ++i) EXPECT_GE(top[i - 1]["logprob"], top[i]["logprob"]);
    // Greedy: the chosen token is the most likely one.
    EXPECT_EQ(top[0]["token"], e["token"]);
    EXPECT_NEAR(top[0]["logprob"].get<double>(), e["logprob"].get<double>(), 1e-5);
  }
  EXPECT_TRUE(any_top) << "top_logprobs were asked for but every token's list is empty";
  // Without logprobs: null.
  EXPECT_TRUE(chat({{"max_tokens", 2}}).json()["choices"][0]["logprobs"].is_null());
}

TEST_F(HttpServerTest, CompletionLogprobsHaveTheLegacyShape) {
  Json j =
      post("/v1/completions",
           {{"prompt", rendered_prompt()}, {"temperature", 0}, {"max_tokens", 30}, {"logprobs", 2}})
          .json();
  const Json& c = j["choices"][0];
  const Json& lp = c["logprobs"];
  const size_t n = lp["tokens"].size();
  ASSERT_GT(n, 0u);
  EXPECT_EQ(lp["token_logprobs"].size(), n);
  EXPECT_EQ(lp["top_logprobs"].size(), n);
  EXPECT_EQ(lp["text_offset"].size(), n);
  std::string joined;
  for (size_t i = 0; i < n; ++i) {
    EXPECT_EQ(lp["text_offset"][i], joined.size());
    joined += lp["tokens"][i].get<std::string>();
    EXPECT_LE(lp["top_logprobs"][i].size(), 2u);
  }
  EXPECT_EQ(joined, c["text"].get<std::string>());
}

TEST_F(HttpServerTest, ErrorsHaveTheOpenAiShapeAndStatus) {
  TestConnection conn(port());  // errors leave the connection usable
  auto chat_with = [&](Json extra) {
    return conn.post_json("/v1/chat/completions", chat_body(extra));
  };
  expect_error_shape(conn.request("POST", "/v1/chat/completions", "{\"messages\": [", {}), 400, "",
                     "invalid_json");
  expect_error_shape(conn.request("POST", "/v1/chat/completions", "[]", {}), 400, "",
                     "invalid_json");
  expect_error_shape(chat_with({{"temperature", "hot"}}), 400, "temperature", "invalid_type");
  expect_error_shape(chat_with({{"temperature", -1}}), 400, "temperature", "invalid_value");
  expect_error_shape(chat_with({{"n", 0}}), 400, "n", "invalid_value");
  expect_error_shape(chat_with({{"n", 65}}), 400, "n", "invalid_value");
  expect_error_shape(chat_with({{"top_p", 0}}), 400, "top_p", "invalid_value");
  expect_error_shape(chat_with({{"top_p", 1.5}}), 400, "top_p", "invalid_value");
  expect_error_shape(chat_with({{"stop", 3}}), 400, "stop", "invalid_type");
  expect_error_shape(chat_with({{"logit_bias", {{"99999", 1}}}}), 400, "logit_bias",
                     "invalid_value");
  expect_error_shape(chat_with({{"model", "gpt-4o"}}), 404, "model", "model_not_found");
  expect_error_shape(conn.post_json("/v1/chat/completions", {{"model", "tiny-reasoner"}}), 400,
                     "messages", "");
  expect_error_shape(conn.post_json("/v1/completions", {{"prompt", 5}}), 400, "prompt",
                     "invalid_type");
  // The context is 1024 tokens; each digit is a token.
  expect_error_shape(conn.post_json("/v1/completions", {{"prompt", std::string(1100, '7')}}), 400,
                     "prompt", "context_length_exceeded");
  expect_error_shape(chat_with({{"messages", user_messages(std::string(1100, '7'))}}), 400,
                     "messages", "context_length_exceeded");
  expect_error_shape(chat_with({{"max_tokens", 1020}}), 400, "max_tokens",
                     "context_length_exceeded");
  HttpReply wrong_method = conn.request("GET", "/v1/chat/completions");
  expect_error_shape(wrong_method, 405, "", "method_not_allowed");
  EXPECT_EQ(wrong_method.header("allow"), "POST");
  expect_error_shape(conn.request("POST", "/v1/models", "{}"), 405, "", "method_not_allowed");
  expect_error_shape(conn.request("GET", "/v2/anything"), 404, "", "not_found");
  // The connection survived all of it.
  EXPECT_EQ(conn.request("GET", "/health").status, 200);
  EXPECT_EQ(dispatcher_->stats().requests_in_flight, 0);
}

TEST_F(HttpServerTest, BodyAndHeaderLimits) {
  auto small = start({.max_body_bytes = 1024, .max_header_bytes = 2048});
  HttpReply big =
      post_json(small->port(), "/v1/chat/completions", chat_body({}, std::string(4000, 'x')));
  expect_error_shape(big, 413, "", "request_too_large");
  // A body far beyond the limit: the server reads and drops it so the client gets the answer.
  HttpReply huge =
      testing::http_request(small->port(), "POST", "/v1/completions", std::string(16 << 20, ' '));
  EXPECT_EQ(huge.status, 413);
  HttpReply headers = testing::http_request(small->port(), "GET", "/v1/models", "",
                                            {{"X-Padding", std::string(4000, 'p')}});
  expect_error_shape(headers, 431, "", "request_header_fields_too_large");
  EXPECT_EQ(testing::http_request(small->port(), "GET", "/v1/models").status, 200);
  small->stop(1s);
}

TEST_F(HttpServerTest, UnavailableDispatcherGives503WithRetryAfter) {
  UnavailableDispatcher unavailable;
  auto s = start({.retry_after_s = 3}, &unavailable);
  HttpReply r = post_json(s->port(), "/v1/chat/completions", chat_body({{"max_tokens", 4}}));
  expect_error_shape(r, 503, "", "service_unavailable");
  EXPECT_EQ(r.header("retry-after"), "3");
  HttpReply health = testing::http_request(s->port(), "GET", "/health");
  EXPECT_EQ(health.status, 503);
  EXPECT_EQ(health.json()["status"], "unavailable");
  EXPECT_NE(health.json()["reason"].get<std::string>().find("no healthy replica"),
            std::string::npos);
  unavailable.healthy = 1;
  EXPECT_EQ(testing::http_request(s->port(), "GET", "/health").status, 200);
  s->stop(1s);
}

TEST_F(HttpServerTest, ApiKeyIsRequiredWhenConfigured) {
  auto s = start({.api_key = "sekrit"});
  expect_error_shape(testing::http_request(s->port(), "GET", "/v1/models"), 401, "",
                     "invalid_api_key");
  HttpReply wrong =
      testing::http_request(s->port(), "GET", "/v1/models", "", {{"Authorization", "Bearer nope"}});
  expect_error_shape(wrong, 401, "", "invalid_api_key");
  EXPECT_EQ(wrong.header("www-authenticate"), "Bearer");
  EXPECT_EQ(testing::http_request(s->port(), "GET", "/v1/models", "",
                                  {{"Authorization", "Bearer sekrit"}})
                .status,
            200);
  HttpReply gen = testing::http_request(s->port(), "POST", "/v1/completions",
                                        Json({{"prompt", "1+"}, {"max_tokens", 2}}).dump(),
                                        {{"Authorization", "Bearer sekrit"}});
  EXPECT_EQ(gen.status, 200) << gen.body;
  EXPECT_EQ(testing::http_request(s->port(), "GET", "/health").status, 200);  // probes need no key
  s->stop(1s);
}

// RFC 7235: the scheme is case-insensitive and followed by one or more spaces; the key is not.
TEST_F(HttpServerTest, BearerSchemeIsCaseInsensitiveTheKeyIsNot) {
  auto s = start({.api_key = "SeKrit-42"});
  auto models_with = [&](const std::string& authorization) {
    return testing::http_request(s->port(), "GET", "/v1/models", "",
                                 {{"Authorization", authorization}})
        .status;
  };
  for (const char* ok : {"Bearer SeKrit-42", "bearer SeKrit-42", "BEARER SeKrit-42",
                         "bEaReR SeKrit-42", "Bearer  SeKrit-42"})
    EXPECT_EQ(models_with(ok), 200) << ok;
  for (const char* refused : {"Bearer sekrit-42", "bearer SEKRIT-42", "Bearer SeKrit-4",
                              "Bearer SeKrit-420", "BearerSeKrit-42", "Basic SeKrit-42",
                              "SeKrit-42", "Bearer", "Bearer "})
    EXPECT_EQ(models_with(refused), 401) << refused;
  s->stop(1s);
}

TEST_F(HttpServerTest, RefusesNonLoopbackWithoutApiKey) {
  auto open = HttpServer::start({.host = "0.0.0.0", .port = 0}, *model_, *dispatcher_);
  ASSERT_FALSE(open.has_value());
  EXPECT_EQ(open.error().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(open.error().message().find("API key"), std::string::npos);
  auto bad = HttpServer::start({.host = "my-laptop", .port = 0}, *model_, *dispatcher_);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), StatusCode::kInvalidArgument);
}

// Loopback is all of 127.0.0.0/8 (Linux routes it to lo), ::1 and "localhost": no key needed.
TEST_F(HttpServerTest, AnyLoopbackAddressNeedsNoApiKey) {
  auto s = start({.host = "127.0.0.2"});
  ASSERT_TRUE(s);
  TestConnection conn(s->port(), 30, "127.0.0.2");
  EXPECT_EQ(conn.request("GET", "/v1/models").status, 200);
  s->stop(1s);
  for (const char* host : {"127.0.0.1", "127.0.0.2", "127.255.255.254", "::1", "localhost"})
    EXPECT_TRUE(is_loopback_host(host)) << host;
  for (const char* host : {"128.0.0.1", "126.255.255.255", "0.0.0.0", "::", "10.0.0.1",
                           "::ffff:10.0.0.1", "my-laptop", ""})
    EXPECT_FALSE(is_loopback_host(host)) << host;
}

TEST_F(HttpServerTest, ClientAbortMidStreamCancelsTheRequest) {
  SlowDispatcher slow(*dispatcher_, 5ms);
  auto s = start({}, &slow);
  const int64_t tokens_before = dispatcher_->stats().tokens_generated;
  {
    TestConnection conn(s->port());
    Json body = chat_body({{"stream", true}, {"max_tokens", 900}, {"ignore_eos", true}});
    const std::string text = body.dump();
    conn.send_raw(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: " +
        std::to_string(text.size()) + "\r\n\r\n" + text);
    std::string got = conn.read_until_count("data: ", 4);
    EXPECT_NE(got.find("HTTP/1.1 200"), std::string::npos);
    conn.close();
  }
  ASSERT_TRUE(wait_idle()) << "the aborted request is still in flight";
  EXPECT_LT(dispatcher_->stats().tokens_generated - tokens_before, 900) << "it ran to the end";
  // The next request is served normally, and afterwards nothing is left running or holding
  // KV blocks.
  HttpReply next = post_json(s->port(), "/v1/chat/completions", chat_body({{"max_tokens", 8}}));
  ASSERT_EQ(next.status, 200) << next.body;
  ASSERT_TRUE(wait_idle());
  DispatcherStats st = dispatcher_->stats();
  EXPECT_EQ(st.running, 0);
  EXPECT_EQ(st.waiting, 0);
  EXPECT_EQ(st.kv_blocks_used, 0);
  s->stop(1s);
}

TEST_F(HttpServerTest, ClientAbortBeforeTheWholeResponseCancelsTheRequest) {
  SlowDispatcher slow(*dispatcher_, 5ms);
  auto s = start({}, &slow);
  const int64_t tokens_before = dispatcher_->stats().tokens_generated;
  {
    TestConnection conn(s->port());
    const std::string text = chat_body({{"max_tokens", 900}, {"ignore_eos", true}}).dump();
    conn.send_raw("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                  std::to_string(text.size()) + "\r\n\r\n" + text);
    const auto until = std::chrono::steady_clock::now() + 10s;
    while (dispatcher_->stats().requests_in_flight == 0 && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(2ms);
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(wait_idle());
  EXPECT_LT(dispatcher_->stats().tokens_generated - tokens_before, 900);
  std::vector<testing::PrometheusSample> samples;
  testing::check_prometheus_text(testing::http_request(s->port(), "GET", "/metrics").body,
                                 &samples);
  EXPECT_EQ(testing::prometheus_value(samples, "ponder_http_requests_total",
                                      {{"endpoint", "/v1/chat/completions"}, {"status", "499"}}),
            1);
  s->stop(1s);
}

// A client that leaves while its (already counted) answer is still being written is not also
// counted as a 499: one request, one count. The answer is large (~12 MB: n 16, 20 top logprobs
// per token, more than the kernel buffers on both ends hold) and the client's receive buffer
// small, so the write is still pending when the client resets the connection.
TEST_F(HttpServerTest, ClientResetDuringTheAnswersWriteCountsTheRequestOnce) {
  auto s = start();
  const std::string text =
      chat_body({{"max_tokens", 500}, {"ignore_eos", true}, {"n", 16}, {"logprobs", true},
                 {"top_logprobs", 20}})
          .dump();
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  const int rcvbuf = 4096;
  ASSERT_EQ(::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf), 0);
  const timeval tv{.tv_sec = 60, .tv_usec = 0};
  ASSERT_EQ(::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  sockaddr_in addr{.sin_family = AF_INET, .sin_port = htons(s->port())};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
  const std::string request = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                              std::to_string(text.size()) + "\r\n\r\n" + text;
  ASSERT_EQ(::send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  char head[16] = {};
  ASSERT_EQ(::recv(fd, head, sizeof head - 1, MSG_WAITALL), static_cast<ssize_t>(sizeof head - 1));
  EXPECT_EQ(std::string(head).substr(0, 12), "HTTP/1.1 200");
  std::this_thread::sleep_for(200ms);  // the server's buffers fill
  const linger reset{.l_onoff = 1, .l_linger = 0};  // close with RST, the rest unread
  ASSERT_EQ(::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset), 0);
  ::close(fd);

  // The session is gone once no completion request is in progress.
  std::vector<testing::PrometheusSample> samples;
  for (const auto until = std::chrono::steady_clock::now() + 10s;;) {
    samples.clear();
    testing::check_prometheus_text(testing::http_request(s->port(), "GET", "/metrics").body,
                                   &samples);
    if (testing::prometheus_value(samples, "ponder_http_requests_in_progress", {}) == 0 ||
        std::chrono::steady_clock::now() > until)
      break;
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(testing::prometheus_value(samples, "ponder_http_requests_in_progress", {}), 0);
  EXPECT_EQ(testing::prometheus_value(samples, "ponder_http_requests_total",
                                      {{"endpoint", "/v1/chat/completions"}, {"status", "200"}}),
            1);
  EXPECT_TRUE(std::isnan(testing::prometheus_value(
      samples, "ponder_http_requests_total",
      {{"endpoint", "/v1/chat/completions"}, {"status", "499"}})))
      << "the answered request was counted again as a 499";
  s->stop(1s);
}

TEST_F(HttpServerTest, SixtyFourConcurrentStreamsAllComplete) {
  constexpr int kClients = 64;
  static constexpr int kTokens = 24;
  std::vector<std::future<Streamed>> futures;
  for (int i = 0; i < kClients; ++i)
    futures.push_back(std::async(std::launch::async, [this, i] {
      Json body = chat_body({{"stream", true},
                             {"stream_options", {{"include_usage", true}}},
                             {"max_tokens", kTokens},
                             {"ignore_eos", true},
                             {"seed", i}},
                            "What is " + std::to_string(i) + "+" + std::to_string(2 * i) + "?");
      return parse_stream(post("/v1/chat/completions", body));
    }));
  for (int i = 0; i < kClients; ++i) {
    Streamed s = futures[i].get();
    EXPECT_EQ(s.status, 200) << "client " << i;
    EXPECT_TRUE(s.done) << "client " << i;
    ASSERT_TRUE(s.usage.has_value()) << "client " << i;
    EXPECT_EQ((*s.usage)["completion_tokens"], kTokens) << "client " << i;
    EXPECT_EQ(s.finish[0], "length") << "client " << i;
  }
  ASSERT_TRUE(wait_idle());
  EXPECT_EQ(dispatcher_->stats().kv_blocks_used, 0);
}

TEST_F(HttpServerTest, HealthAndMetrics) {
  HttpReply h = http_request(port(), "GET", "/health");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.json()["status"], "ok");
  ASSERT_EQ(chat({{"max_tokens", 10}}).status, 200);
  ASSERT_EQ(chat({{"max_tokens", 10}, {"stream", true}}).status, 200);
  ASSERT_EQ(chat({{"n", 0}}).status, 400);
  // The dispatcher counts a request out after its last output is delivered, which may be just
  // after the client has the response.
  ASSERT_TRUE(wait_idle());
  HttpReply m = http_request(port(), "GET", "/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(m.header("content-type").rfind("text/plain; version=0.0.4", 0), 0u);
  std::vector<testing::PrometheusSample> s;
  auto problems = testing::check_prometheus_text(m.body, &s);
  EXPECT_TRUE(problems.empty()) << problems.front() << "\n" << m.body;
  auto value = [&](const std::string& name, std::map<std::string, std::string> labels = {}) {
    return testing::prometheus_value(s, name, labels);
  };
  EXPECT_EQ(value("ponder_http_requests_total",
                  {{"endpoint", "/v1/chat/completions"}, {"status", "200"}}),
            2);
  EXPECT_EQ(value("ponder_http_requests_total",
                  {{"endpoint", "/v1/chat/completions"}, {"status", "400"}}),
            1);
  EXPECT_EQ(value("ponder_http_requests_total", {{"endpoint", "/health"}, {"status", "200"}}), 1);
  EXPECT_EQ(value("ponder_time_to_first_token_seconds_count"), 2);
  EXPECT_GE(value("ponder_time_per_output_token_seconds_count"), 1);
  EXPECT_EQ(value("ponder_request_duration_seconds_count"), 2);
  EXPECT_GT(value("ponder_generation_tokens_total"), 0);
  EXPECT_EQ(value("ponder_replicas_healthy"), 1);
  EXPECT_EQ(value("ponder_requests_in_flight"), 0);
  EXPECT_EQ(value("ponder_http_requests_in_progress"), 0);
  EXPECT_GT(value("ponder_kv_blocks_free"), 0);
  EXPECT_GE(value("ponder_prefix_cache_hit_rate"), 0);
  EXPECT_GT(value("ponder_prompt_tokens_total"), 0);
  EXPECT_FALSE(std::isnan(value("ponder_generation_tokens_per_second")));
}

// n samples prefill their prompt once; a repeated prompt prefills again, mostly from the prefix
// cache. Nominal FLOPs are per choice, each what the choice's seed costs alone.
TEST_F(HttpServerTest, PrefillsComputedPromptTokensAndNominalFlops) {
  auto scrape = [&] {
    std::vector<testing::PrometheusSample> s;
    HttpReply m = http_request(port(), "GET", "/metrics");
    auto problems = testing::check_prometheus_text(m.body, &s);
    EXPECT_TRUE(problems.empty()) << problems.front();
    return std::pair{testing::prometheus_value(s, "ponder_prefills_total"),
                     testing::prometheus_value(s, "ponder_prompt_tokens_computed_total")};
  };
  // A question no other test asks, long enough to fill prefix-cache blocks of its own.
  const std::string question = "Name the sum of 1234 and 4321, then of 2468 and 8642, please.";
  auto ask = [&](int n, int64_t seed) {
    Json body = chat_body(
        {{"n", n}, {"seed", seed}, {"temperature", 1.0}, {"max_tokens", 6}}, question);
    HttpReply r = post("/v1/chat/completions", body);
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_TRUE(wait_idle());
    return r.json();
  };
  ASSERT_TRUE(wait_idle());
  const auto [prefills0, computed0] = scrape();
  Json four = ask(4, 20);
  const auto [prefills1, computed1] = scrape();
  const int64_t prompt = four["usage"]["prompt_tokens"];
  const int64_t cached = four["usage"]["prompt_tokens_details"]["cached_tokens"];
  EXPECT_EQ(prefills1 - prefills0, 1);
  EXPECT_EQ(computed1 - computed0, prompt - cached);
  Json again = ask(1, 22);  // choice 2's seed
  const auto [prefills2, computed2] = scrape();
  const int64_t cached_again = again["usage"]["prompt_tokens_details"]["cached_tokens"];
  EXPECT_GT(cached_again, cached);
  EXPECT_EQ(prefills2 - prefills1, 1);
  EXPECT_EQ(computed2 - computed1, prompt - cached_again);
  EXPECT_LT(computed2 - computed1, computed1 - computed0);

  double nominal = 0;
  for (const Json& c : four["choices"]) nominal += c["usage"]["nominal_flops"].get<double>();
  EXPECT_NEAR(four["usage"]["nominal_flops"].get<double>(), nominal, nominal * 1e-12);
  EXPECT_LT(four["usage"]["flops"].get<double>(), nominal);  // the prompt ran once
  ASSERT_EQ(again["choices"][0]["message"], four["choices"][2]["message"]);
  EXPECT_EQ(again["choices"][0]["usage"]["nominal_flops"],
            four["choices"][2]["usage"]["nominal_flops"]);
  EXPECT_EQ(again["usage"]["nominal_flops"], again["choices"][0]["usage"]["nominal_flops"]);
}

TEST_F(HttpServerTest, DrainLetsRequestsInFlightFinish) {
  SlowDispatcher slow(*dispatcher_, 2ms);
  auto s = start({}, &slow);
  const uint16_t p = s->port();
  ASSERT_TRUE(wait_idle());
  auto reply = std::async(std::launch::async, [p] {
    return post_json(p, "/v1/chat/completions",
                     chat_body({{"max_tokens", 150}, {"ignore_eos", true}}));
  });
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (dispatcher_->stats().requests_in_flight == 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(2ms);
  s->stop(30s);
  HttpReply r = reply.get();
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["usage"]["completion_tokens"], 150);
  EXPECT_ANY_THROW(TestConnection late(p));  // no longer listening
}

TEST_F(HttpServerTest, DrainCancelsWhatOutlivesTheDeadline) {
  SlowDispatcher slow(*dispatcher_, 5ms);
  auto s = start({}, &slow);
  TestConnection conn(s->port());
  const std::string text =
      chat_body({{"stream", true}, {"max_tokens", 900}, {"ignore_eos", true}}).dump();
  conn.send_raw("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                std::to_string(text.size()) + "\r\n\r\n" + text);
  conn.read_until_count("data: ", 3);
  const auto t0 = std::chrono::steady_clock::now();
  s->stop(100ms);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 8s);
  EXPECT_TRUE(wait_idle());
  // The stream ended with an error event saying why, then [DONE].
  std::string rest = conn.read_until_count("[DONE]", 1);
  EXPECT_NE(rest.find("\"error\""), std::string::npos) << rest.substr(0, 300);
  EXPECT_NE(rest.find("data: [DONE]"), std::string::npos);
}

TEST_F(HttpServerTest, NullAndMultipartContent) {
  Json messages =
      Json::array({{{"role", "user"}, {"content", "What is 1+1?"}},
                   {{"role", "assistant"}, {"content", nullptr}},
                   {{"role", "user"},
                    {"content", Json::array({{{"type", "text"}, {"text", "And"}},
                                             {{"type", "text"}, {"text", kQuestion}}})}}});
  HttpReply r = post("/v1/chat/completions", {{"messages", messages}, {"max_tokens", 8}});
  EXPECT_EQ(r.status, 200) << r.body;
  expect_error_shape(post("/v1/chat/completions",
                          {{"messages", Json::array({{{"role", "user"}, {"content", nullptr}}})}}),
                     400, "messages[0].content", "");
}

TEST_F(HttpServerTest, ArraysOfPromptsGiveChoicesInOrder) {
  const std::string a = "12+30=", b = "7*8=";
  Json j = post("/v1/completions",
                {{"prompt", {a, b}}, {"n", 2}, {"temperature", 0}, {"max_tokens", 12}})
               .json();
  ASSERT_EQ(j["choices"].size(), 4u);
  const std::string ta =
      post("/v1/completions", {{"prompt", a}, {"temperature", 0}, {"max_tokens", 12}})
          .json()["choices"][0]["text"];
  const std::string tb =
      post("/v1/completions", {{"prompt", b}, {"temperature", 0}, {"max_tokens", 12}})
          .json()["choices"][0]["text"];
  EXPECT_EQ(j["choices"][0]["text"], ta);
  EXPECT_EQ(j["choices"][1]["text"], ta);
  EXPECT_EQ(j["choices"][2]["text"], tb);
  EXPECT_EQ(j["choices"][3]["text"], tb);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(j["choices"][i]["index"], i);
  EXPECT_EQ(j["usage"]["prompt_tokens"],
            model_->tokenizer.encode(a).size() + model_->tokenizer.encode(b).size());
  // Token ids are taken as given: the same prompt as ids gives the same text.
  Json ids = post("/v1/completions",
                  {{"prompt", model_->tokenizer.encode(a)}, {"temperature", 0}, {"max_tokens", 12}})
                 .json();
  EXPECT_EQ(ids["choices"][0]["text"], ta);
}

TEST_F(HttpServerTest, ThinkingControls) {
  Json capped = chat({{"temperature", 0}, {"max_tokens", 200}, {"max_thinking_tokens", 5}}).json();
  ASSERT_TRUE(capped.contains("usage")) << capped.dump();
  // Five thinking tokens and the inserted end-of-thinking delimiter.
  EXPECT_LE(capped["usage"]["completion_tokens_details"]["reasoning_tokens"], 6);
  Json off =
      chat({{"max_tokens", 40}, {"chat_template_kwargs", {{"enable_thinking", false}}}}).json();
  EXPECT_EQ(off["choices"][0]["message"]["reasoning_content"], "");
  EXPECT_EQ(off["usage"]["completion_tokens_details"]["reasoning_tokens"], 0);
  expect_error_shape(chat({{"max_thinking_tokens", -3}}), 400, "max_thinking_tokens",
                     "invalid_value");
}

TEST_F(HttpServerTest, KeepAliveAcrossRequestsAndStreams) {
  TestConnection conn(port());
  EXPECT_EQ(conn.request("GET", "/health").status, 200);
  HttpReply stream =
      conn.post_json("/v1/chat/completions", chat_body({{"stream", true}, {"max_tokens", 6}}));
  EXPECT_EQ(stream.status, 200);
  EXPECT_TRUE(parse_stream(stream).done);
  EXPECT_TRUE(stream.keep_alive);
  HttpReply whole = conn.post_json("/v1/chat/completions", chat_body({{"max_tokens", 6}}));
  EXPECT_EQ(whole.status, 200);
  EXPECT_EQ(conn.request("GET", "/v1/models").status, 200);
  // Pipelined: two requests in one write, two answers in order.
  conn.send_raw(
      "GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\nGET /v2/nothing HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(conn.read_reply().status, 200);
  EXPECT_EQ(conn.read_reply().status, 404);
}

TEST_F(HttpServerTest, CurlStyleExpectContinueAndHttp10Streams) {
  const std::string body = chat_body({{"max_tokens", 4}}).dump();
  {
    TestConnection conn(port());
    conn.send_raw(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
        "Content-Length: " +
        std::to_string(body.size()) + "\r\n\r\n");
    std::string interim = conn.read_until_count("\r\n\r\n", 1);
    EXPECT_EQ(interim.rfind("HTTP/1.1 100 Continue", 0), 0u) << interim;
    conn.send_raw(body);
    EXPECT_EQ(conn.read_reply().status, 200);
  }
  {
    // HTTP/1.0 has no chunked encoding: the stream's end is the connection's end.
    TestConnection conn(port());
    const std::string stream_body = chat_body({{"max_tokens", 4}, {"stream", true}}).dump();
    conn.send_raw("POST /v1/chat/completions HTTP/1.0\r\nContent-Length: " +
                  std::to_string(stream_body.size()) + "\r\n\r\n" + stream_body);
    std::string all = conn.read_until_count("no such text", 1);  // everything, until closed
    EXPECT_EQ(all.rfind("HTTP/1.0 200", 0), 0u) << all.substr(0, 200);
    EXPECT_EQ(all.find("chunked"), std::string::npos);
    EXPECT_NE(all.find("data: [DONE]\n\n"), std::string::npos);
  }
}

}  // namespace
}  // namespace ponder::coordinator::http
