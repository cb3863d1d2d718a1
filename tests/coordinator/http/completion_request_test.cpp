// Request parsing: every accepted field lands in its typed place; wrong types and out-of-range
// values fail with OpenAI-shaped errors that name the field.
#include "coordinator/api/completion_request.h"

#include <gtest/gtest.h>

namespace ponder::coordinator::api {
namespace {

using Json = nlohmann::ordered_json;

const RequestLimits kLimits{.max_n = 8, .vocab_size = 1000, .max_prompts = 4, .max_stop = 4};

Json chat_body(Json extra = Json::object()) {
  Json b = {{"model", "m"}, {"messages", Json::array({{{"role", "user"}, {"content", "hi"}}})}};
  for (auto& [k, v] : extra.items()) b[k] = v;
  return b;
}

ApiError chat_error(Json extra) {
  auto r =
      parse_completion_request(Endpoint::kChatCompletions, chat_body(std::move(extra)), kLimits);
  EXPECT_FALSE(r.has_value());
  return r ? ApiError{} : r.error();
}

TEST(CompletionRequest, ChatFieldsAreRead) {
  Json extra = {{"max_completion_tokens", 50},
                {"temperature", 0.5},
                {"top_p", 0.9},
                {"top_k", 20},
                {"min_p", 0.1},
                {"n", 3},
                {"seed", 42},
                {"stop", "END"},
                {"presence_penalty", 0.5},
                {"frequency_penalty", -0.5},
                {"repetition_penalty", 1.1},
                {"logit_bias", {{"5", 10}, {"7", -100}}},
                {"logprobs", true},
                {"top_logprobs", 3},
                {"stream", true},
                {"stream_options", {{"include_usage", true}}},
                {"user", "u1"},
                {"max_thinking_tokens", 100},
                {"min_thinking_tokens", 10},
                {"extend_thinking", 1},
                {"chat_template_kwargs", {{"enable_thinking", false}}},
                {"ignore_eos", true},
                {"min_tokens", 5},
                {"stop_token_ids", {3, 4}},
                {"include_stop_str_in_output", true},
                {"skip_special_tokens", false}};
  auto r = parse_completion_request(Endpoint::kChatCompletions, chat_body(extra), kLimits);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->model, "m");
  EXPECT_EQ(*r->max_tokens, 50);
  EXPECT_FLOAT_EQ(r->sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r->sampling.top_p, 0.9f);
  EXPECT_EQ(r->sampling.top_k, 20);
  EXPECT_FLOAT_EQ(r->sampling.min_p, 0.1f);
  EXPECT_EQ(r->n, 3);
  EXPECT_TRUE(r->has_seed);
  EXPECT_EQ(r->sampling.seed, 42u);
  EXPECT_EQ(r->stop, std::vector<std::string>{"END"});
  EXPECT_FLOAT_EQ(r->sampling.presence_penalty, 0.5f);
  EXPECT_FLOAT_EQ(r->sampling.frequency_penalty, -0.5f);
  EXPECT_FLOAT_EQ(r->sampling.repetition_penalty, 1.1f);
  ASSERT_EQ(r->sampling.logit_bias.size(), 2u);
  EXPECT_EQ(r->sampling.logit_bias[1].first, 7);
  EXPECT_FLOAT_EQ(r->sampling.logit_bias[1].second, -100.0f);
  EXPECT_TRUE(r->logprobs);
  EXPECT_EQ(r->top_logprobs, 3);
  EXPECT_EQ(r->sampling.top_logprobs, 3);
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->include_usage);
  EXPECT_EQ(r->user, "u1");
  EXPECT_EQ(r->max_thinking_tokens, 100);
  EXPECT_EQ(r->min_thinking_tokens, 10);
  EXPECT_EQ(r->extend_thinking, 1);
  EXPECT_EQ(r->chat_template_kwargs["enable_thinking"], false);
  EXPECT_TRUE(r->ignore_eos);
  EXPECT_EQ(r->min_tokens, 5);
  EXPECT_EQ(r->stop_token_ids, (std::vector<int32_t>{3, 4}));
  EXPECT_TRUE(r->include_stop_str_in_output);
  EXPECT_FALSE(r->skip_special_tokens);
}

TEST(CompletionRequest, DefaultsAndNulls) {
  auto r =
      parse_completion_request(Endpoint::kChatCompletions,
                               chat_body({{"temperature", nullptr}, {"stop", nullptr}}), kLimits);
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->max_tokens.has_value());
  EXPECT_EQ(r->n, 1);
  EXPECT_FLOAT_EQ(r->sampling.temperature, 1.0f);  // OpenAI's default
  EXPECT_FALSE(r->has_seed);
  EXPECT_TRUE(r->stop.empty());
  EXPECT_TRUE(r->skip_special_tokens);
  EXPECT_FALSE(r->stream);
  EXPECT_TRUE(r->tools.is_null());
}

TEST(CompletionRequest, MessagesAreNormalized) {
  Json messages = Json::array({
      {{"role", "developer"}, {"content", "be brief"}},
      {{"role", "user"},
       {"content",
        Json::array({{{"type", "text"}, {"text", "a"}}, {{"type", "text"}, {"text", "b"}}})}},
      {{"role", "assistant"}, {"content", nullptr}, {"tool_calls", Json::array()}},
  });
  auto r = parse_completion_request(Endpoint::kChatCompletions, {{"messages", messages}}, kLimits);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->messages[0]["role"], "system");
  EXPECT_EQ(r->messages[1]["content"], "a\nb");
  EXPECT_TRUE(r->messages[2]["content"].is_null());
  EXPECT_TRUE(r->messages[2].contains("tool_calls"));
}

TEST(CompletionRequest, ToolSchemasKeepTheirKeyOrder) {
  Json tool = Json::parse(R"({"type": "function", "function": {"name": "f", "parameters":
      {"type": "object", "properties": {"zeta": {"type": "string"}, "alpha": {"type": "integer"}}}}})");
  auto r = parse_completion_request(Endpoint::kChatCompletions,
                                    chat_body({{"tools", Json::array({tool})}}), kLimits);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->tools.dump(), Json::array({tool}).dump());
  EXPECT_LT(r->tools.dump().find("zeta"), r->tools.dump().find("alpha"));
}

TEST(CompletionRequest, ToolsAndToolChoice) {
  auto fn = [](const char* name) {
    return Json{{"type", "function"}, {"function", {{"name", name}}}};
  };
  auto r = parse_completion_request(
      Endpoint::kChatCompletions,
      chat_body(
          {{"tools", {fn("a"), fn("b")}}, {"tool_choice", "auto"}, {"parallel_tool_calls", false}}),
      kLimits);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->tool_names, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r->tool_choice, CompletionRequest::ToolChoice::kAuto);
  EXPECT_FALSE(r->parallel_tool_calls);

  r = parse_completion_request(Endpoint::kChatCompletions,
                               chat_body({{"tools", {fn("a")}}, {"tool_choice", "none"}}), kLimits);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->tools.is_null());  // the template sees no tools, and nothing is parsed
  EXPECT_TRUE(r->tool_names.empty());

  EXPECT_EQ(chat_error({{"tools", {fn("a"), 5}}}).param, "tools[1]");
  EXPECT_EQ(chat_error({{"tools", {{{"type", "retrieval"}}}}}).param, "tools[0]");
  EXPECT_EQ(chat_error({{"tools", {fn("")}}}).param, "tools[0].function.name");
  EXPECT_EQ(chat_error({{"tools", {fn("a"), fn("a")}}}).param, "tools[1].function.name");
  Json bad_params = fn("a");
  bad_params["function"]["parameters"] = "{}";
  EXPECT_EQ(chat_error({{"tools", {bad_params}}}).param, "tools[0].function.parameters");
  EXPECT_EQ(chat_error({{"tools", {fn("a")}}, {"tool_choice", "sometimes"}}).param, "tool_choice");
  r = parse_completion_request(
      Endpoint::kChatCompletions,
      chat_body({{"tools", {fn("a"), fn("b")}}, {"tool_choice", "required"}}), kLimits);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->forces_tool_call());
  EXPECT_EQ(r->callable_functions(), (std::vector<std::string>{"a", "b"}));
  const Json named = {{"type", "function"}, {"function", {{"name", "b"}}}};
  r = parse_completion_request(Endpoint::kChatCompletions,
                               chat_body({{"tools", {fn("a"), fn("b")}}, {"tool_choice", named}}),
                               kLimits);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->callable_functions(), (std::vector<std::string>{"b"}));
  // A name that is not among the tools, a malformed object, "required" without tools.
  EXPECT_EQ(chat_error({{"tools", {fn("a")}}, {"tool_choice", named}}).param, "tool_choice");
  EXPECT_EQ(chat_error({{"tools", {fn("a")}}, {"tool_choice", {{"type", "function"}}}}).param,
            "tool_choice");
  EXPECT_EQ(chat_error({{"tool_choice", "required"}}).param, "tool_choice");
  EXPECT_EQ(chat_error({{"parallel_tool_calls", "no"}}).param, "parallel_tool_calls");
}

TEST(CompletionRequest, PromptForms) {
  auto parse = [](Json prompt) {
    return parse_completion_request(Endpoint::kCompletions, {{"prompt", prompt}}, kLimits);
  };
  auto one = parse("text");
  ASSERT_TRUE(one.has_value());
  ASSERT_EQ(one->prompts.size(), 1u);
  EXPECT_EQ(std::get<std::string>(one->prompts[0]), "text");
  auto many = parse({"a", "b"});
  ASSERT_TRUE(many.has_value());
  EXPECT_EQ(many->prompts.size(), 2u);
  auto ids = parse({1, 2, 3});
  ASSERT_TRUE(ids.has_value());
  ASSERT_EQ(ids->prompts.size(), 1u);
  EXPECT_EQ(std::get<std::vector<int32_t>>(ids->prompts[0]), (std::vector<int32_t>{1, 2, 3}));
  auto id_lists = parse({{1, 2}, {3}});
  ASSERT_TRUE(id_lists.has_value());
  EXPECT_EQ(id_lists->prompts.size(), 2u);

  EXPECT_EQ(parse(Json::array()).error().param, "prompt");
  EXPECT_EQ(parse({"a", 1}).error().param, "prompt[1]");
  EXPECT_EQ(parse({1, 5000}).error().param, "prompt");                  // outside the vocabulary
  EXPECT_EQ(parse({"a", "b", "c", "d", "e"}).error().param, "prompt");  // max_prompts
  EXPECT_EQ(parse(3.5).error().code, "invalid_type");
  auto missing = parse_completion_request(Endpoint::kCompletions, Json::object(), kLimits);
  EXPECT_EQ(missing.error().param, "prompt");
}

TEST(CompletionRequest, CompletionsLogprobsIsAnInteger) {
  auto r =
      parse_completion_request(Endpoint::kCompletions, {{"prompt", "x"}, {"logprobs", 2}}, kLimits);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->logprobs);
  EXPECT_EQ(r->top_logprobs, 2);
  auto zero =
      parse_completion_request(Endpoint::kCompletions, {{"prompt", "x"}, {"logprobs", 0}}, kLimits);
  ASSERT_TRUE(zero.has_value());
  EXPECT_TRUE(zero->logprobs);
  EXPECT_EQ(zero->top_logprobs, 0);
  auto wrong = parse_completion_request(Endpoint::kCompletions,
                                        {{"prompt", "x"}, {"logprobs", true}}, kLimits);
  ASSERT_FALSE(wrong.has_value());
  EXPECT_EQ(wrong.error().param, "logprobs");
}

struct BadField {
  const char* name;
  Json value;
  const char* code;
};

TEST(CompletionRequest, BadFieldsNameThemselves) {
  const std::vector<BadField> cases = {
      {"temperature", "hot", "invalid_type"},
      {"temperature", -0.1, "invalid_value"},
      {"top_p", 0, "invalid_value"},
      {"top_p", 1.5, "invalid_value"},
      {"top_k", -2, "invalid_value"},
      {"top_k", 1.5, "invalid_type"},
      {"min_p", 2, "invalid_value"},
      {"n", 0, "invalid_value"},
      {"n", 9, "invalid_value"},  // above the configured cap
      {"n", "2", "invalid_type"},
      {"max_tokens", 0, "invalid_value"},
      {"max_tokens", 1.0, "invalid_type"},
      {"max_completion_tokens", -5, "invalid_value"},
      {"presence_penalty", 3, "invalid_value"},
      {"frequency_penalty", -2.5, "invalid_value"},
      {"repetition_penalty", 0, "invalid_value"},
      {"seed", "x", "invalid_type"},
      {"stop", 5, "invalid_type"},
      {"stop", Json::array({"a", 1}), "invalid_type"},
      {"stop", "", "invalid_value"},
      {"stop", Json::array({"a", "b", "c", "d", "e"}), "invalid_value"},
      {"stop_token_ids", Json::array({-1}), "invalid_value"},
      {"logit_bias", {{"x", 1}}, "invalid_value"},
      {"logit_bias", {{"5", 101}}, "invalid_value"},
      {"logit_bias", {{"5000", 1}}, "invalid_value"},
      {"logit_bias", Json::array(), "invalid_type"},
      {"logprobs", 1, "invalid_type"},
      {"top_logprobs", 21, "invalid_value"},
      {"stream", "yes", "invalid_type"},
      {"stream_options", {{"include_usage", true}}, "invalid_value"},  // without stream
      {"min_tokens", -1, "invalid_value"},
      {"max_thinking_tokens", -2, "invalid_value"},
      {"min_thinking_tokens", -1, "invalid_value"},
      {"extend_thinking", -1, "invalid_value"},
      {"chat_template_kwargs", "x", "invalid_type"},
      {"tools", "x", "invalid_type"},
      {"response_format", {{"type", "json_object"}}, "invalid_value"},
      {"ignore_eos", 1, "invalid_type"},
      {"user", 5, "invalid_type"},
      {"model", 5, "invalid_type"},
  };
  for (const BadField& c : cases) {
    ApiError e = chat_error({{c.name, c.value}});
    EXPECT_EQ(e.status, 400) << c.name << " = " << c.value.dump();
    EXPECT_EQ(e.param, c.name) << c.name << " = " << c.value.dump();
    EXPECT_EQ(e.code, c.code) << c.name << " = " << c.value.dump();
    EXPECT_EQ(e.type, "invalid_request_error");
    EXPECT_NE(e.message.find(c.name), std::string::npos) << e.message;
  }
}

TEST(CompletionRequest, TopLogprobsNeedsLogprobs) {
  EXPECT_EQ(chat_error({{"top_logprobs", 2}}).param, "top_logprobs");
}

TEST(CompletionRequest, BadMessages) {
  auto parse = [](Json messages) {
    auto r =
        parse_completion_request(Endpoint::kChatCompletions, {{"messages", messages}}, kLimits);
    return r ? ApiError{} : r.error();
  };
  EXPECT_EQ(parse(Json::array()).param, "messages");
  EXPECT_EQ(parse("hi").code, "invalid_type");
  EXPECT_EQ(parse({{{"content", "x"}}}).param, "messages[0].role");
  EXPECT_EQ(parse({{{"role", "wizard"}, {"content", "x"}}}).param, "messages[0].role");
  EXPECT_EQ(parse({{{"role", "user"}, {"content", nullptr}}}).param, "messages[0].content");
  EXPECT_EQ(parse({{{"role", "user"}, {"content", 5}}}).param, "messages[0].content");
  EXPECT_EQ(parse({{{"role", "user"}, {"content", {{{"type", "image_url"}}}}}}).param,
            "messages[0].content[0].type");
  auto missing = parse_completion_request(Endpoint::kChatCompletions, Json::object(), kLimits);
  EXPECT_EQ(missing.error().param, "messages");
}

TEST(CompletionRequest, JsonBody) {
  auto bad = parse_json_body("{\"messages\": [");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().status, 400);
  EXPECT_EQ(bad.error().code, "invalid_json");
  EXPECT_FALSE(parse_json_body("[1, 2]").has_value());
  EXPECT_TRUE(parse_json_body("{}").has_value());
  EXPECT_EQ(bad.error().to_json()["error"]["param"], nullptr);
}

// Found by fuzz/completion_request_fuzzer: Json::value("type", "") threw out of the parser (and
// the request handler) when response_format's type was not a string.
TEST(CompletionRequest, ResponseFormatOfAnyShapeIsAnError) {
  for (const Json& format : {Json{{"type", 5}}, Json{{"type", nullptr}}, Json{{"type", {1}}},
                             Json::object(), Json("text"), Json::array({"text"})}) {
    ApiError e;
    EXPECT_NO_THROW(e = chat_error({{"response_format", format}})) << format.dump();
    EXPECT_EQ(e.param, "response_format") << format.dump();
    EXPECT_EQ(e.code, "invalid_value") << format.dump();
  }
  auto text = parse_completion_request(
      Endpoint::kCompletions, {{"prompt", "x"}, {"response_format", {{"type", "text"}}}}, kLimits);
  EXPECT_TRUE(text.has_value());
}

// Found with fuzz/completion_request_fuzzer: a body of nested arrays (a few MB of "[" fit in
// the 8 MB body limit) overflowed the stack where the request copies `tools` or a message. Such
// bodies are refused when parsed; anything a real schema nests still parses and is read.
TEST(CompletionRequest, DeeplyNestedBodiesAreRefused) {
  // The arrays sit in a tool's parameter schema: body, tools, the tool, function and parameters
  // are 5 levels above them; nested(d) is d levels deep.
  constexpr int kAbove = 5;
  auto nested = [](int depth) {
    return "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"tools\": "
           "[{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {\"x\": " +
           std::string(depth - kAbove, '[') + std::string(depth - kAbove, ']') + "}}}]}";
  };
  auto deep = parse_json_body(nested(1'000'000));
  ASSERT_FALSE(deep.has_value());
  EXPECT_EQ(deep.error().status, 400);
  EXPECT_EQ(deep.error().code, "invalid_json");
  EXPECT_NE(deep.error().message.find(std::to_string(kMaxJsonDepth)), std::string::npos);
  EXPECT_FALSE(parse_json_body(nested(kMaxJsonDepth + 1)).has_value());

  auto deepest = parse_json_body(nested(kMaxJsonDepth));
  ASSERT_TRUE(deepest.has_value()) << deepest.error().message;
  auto request = parse_completion_request(Endpoint::kChatCompletions, *deepest, kLimits);
  ASSERT_TRUE(request.has_value()) << request.error().message;
  EXPECT_TRUE(request->tools.is_array());
}

}  // namespace
}  // namespace ponder::coordinator::api
