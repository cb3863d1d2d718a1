// Engine requests from API requests: max_tokens defaults and limits against the context and the
// KV cache a replica has for one sequence.
#include "coordinator/api/engine_request.h"

#include <gtest/gtest.h>

namespace ponder::coordinator::api {
namespace {

CompletionRequest request(Endpoint endpoint, std::optional<int64_t> max_tokens = std::nullopt) {
  CompletionRequest r;
  r.endpoint = endpoint;
  r.max_tokens = max_tokens;
  return r;
}

std::vector<PreparedPrompt> prompt_of(int64_t tokens) {
  return {PreparedPrompt{.ids = std::vector<int32_t>(static_cast<size_t>(tokens), 7)}};
}

// The max_tokens of the one engine request, or -1 with the error in `*error`.
int64_t max_tokens_of(const CompletionRequest& r, int64_t prompt_tokens,
                      const GenerationLimits& limits, ApiError* error = nullptr) {
  auto out = make_engine_requests(r, prompt_of(prompt_tokens), limits, 1);
  if (!out) {
    if (error) *error = out.error();
    return -1;
  }
  EXPECT_EQ(out->size(), 1u);
  return out->front().max_tokens;
}

TEST(EngineRequest, ChatDefaultIsTheRestOfTheContext) {
  const GenerationLimits limits{.context_length = 1024};
  EXPECT_EQ(max_tokens_of(request(Endpoint::kChatCompletions), 24, limits), 1000);
  const GenerationLimits capped{.context_length = 1024, .default_max_tokens = 300};
  EXPECT_EQ(max_tokens_of(request(Endpoint::kChatCompletions), 24, capped), 300);
  EXPECT_EQ(max_tokens_of(request(Endpoint::kCompletions), 24, limits),
            kDefaultCompletionMaxTokens);
}

// A KV cache that holds fewer tokens than the context: the default is what fits in it.
TEST(EngineRequest, DefaultMaxTokensFitsTheKvCache) {
  const GenerationLimits limits{.context_length = 1024, .kv_cache_tokens = 128};
  EXPECT_EQ(max_tokens_of(request(Endpoint::kChatCompletions), 24, limits), 104);
  const GenerationLimits capped{
      .context_length = 1024, .default_max_tokens = 50, .kv_cache_tokens = 128};
  EXPECT_EQ(max_tokens_of(request(Endpoint::kChatCompletions), 24, capped), 50);
  EXPECT_EQ(max_tokens_of(request(Endpoint::kCompletions), 120, limits), 8);
  EXPECT_EQ(max_tokens_of(request(Endpoint::kCompletions), 24, limits),
            kDefaultCompletionMaxTokens);
  // A cache larger than the context: the context binds.
  const GenerationLimits large{.context_length = 1024, .kv_cache_tokens = 4096};
  EXPECT_EQ(max_tokens_of(request(Endpoint::kChatCompletions), 24, large), 1000);
}

TEST(EngineRequest, ExplicitMaxTokensBeyondTheKvCacheNamesTheField) {
  const GenerationLimits limits{.context_length = 1024, .kv_cache_tokens = 128};
  EXPECT_EQ(max_tokens_of(request(Endpoint::kChatCompletions, 104), 24, limits), 104);
  ApiError e;
  EXPECT_EQ(max_tokens_of(request(Endpoint::kChatCompletions, 105), 24, limits, &e), -1);
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.param, "max_tokens");
  EXPECT_EQ(e.code, "context_length_exceeded");
  EXPECT_NE(e.message.find("KV cache"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("104"), std::string::npos) << "the largest that fits: " << e.message;
  // Beyond the context too: the context's message.
  EXPECT_EQ(max_tokens_of(request(Endpoint::kChatCompletions, 2000), 24, limits, &e), -1);
  EXPECT_EQ(e.param, "max_tokens");
  EXPECT_NE(e.message.find("context length"), std::string::npos) << e.message;
}

TEST(EngineRequest, PromptThatFillsTheKvCacheNamesThePrompt) {
  const GenerationLimits limits{.context_length = 1024, .kv_cache_tokens = 128};
  ApiError e;
  EXPECT_EQ(max_tokens_of(request(Endpoint::kChatCompletions), 128, limits, &e), -1);
  EXPECT_EQ(e.param, "messages");
  EXPECT_EQ(e.code, "context_length_exceeded");
  EXPECT_NE(e.message.find("KV cache"), std::string::npos) << e.message;
  EXPECT_EQ(max_tokens_of(request(Endpoint::kCompletions), 200, limits, &e), -1);
  EXPECT_EQ(e.param, "prompt");
  EXPECT_EQ(max_tokens_of(request(Endpoint::kChatCompletions), 127, limits), 1);
}

// The shape tool_choice "required" enforces is the call each format's parser reads back.
TEST(ToolCallConstraint, EachFormatsCallMatchesAndParses) {
  const std::vector<std::string> names = {"get_weather", "say \"hi\""};
  const std::pair<text::ToolCallFormat, std::string> calls[] = {
      {text::ToolCallFormat::kHermes,
       "\n\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"},
      {text::ToolCallFormat::kHermes,
       "<tool_call>\n{\"name\": \"say \\\"hi\\\"\", \"arguments\": {}}\n</tool_call>"},
      {text::ToolCallFormat::kLlama3Json,
       "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}"},
      {text::ToolCallFormat::kDeepSeekV3,
       "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n"
       "{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>"},
  };
  for (const auto& [format, text] : calls) {
    auto c = tool_call_constraint(format, names, nullptr);
    ASSERT_TRUE(c.has_value());
    ASSERT_TRUE(c->validate().ok());
    ASSERT_TRUE(c->compile().ok());
    worker::ConstraintMatcher m(&*c);
    EXPECT_TRUE(m.feed(text)) << text;
    EXPECT_TRUE(m.complete()) << text;
    const text::ToolCallSplit split = text::ToolCallParser::parse(text, format, names);
    ASSERT_EQ(split.calls.size(), 1u) << text;
    EXPECT_TRUE(split.content.empty()) << split.content;
  }
  auto none = tool_call_constraint(text::ToolCallFormat::kNone, names, nullptr);
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error().param, "tool_choice");
}

}  // namespace
}  // namespace ponder::coordinator::api
