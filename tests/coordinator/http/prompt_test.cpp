// prepare_prompts on the real Qwen3, Llama-3.1 and DeepSeek-V3 chat templates with tool-call
// history sent the way OpenAI clients send it (arguments as a JSON string): the prompt equals
// transformers' rendering of the same conversation (tests/data/chat_templates/<family>/golden.json,
// where Qwen3's and Llama's arguments are objects and DeepSeek's strings).
#include "coordinator/api/prompt.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

namespace ponder::coordinator::api {
namespace {

using Json = nlohmann::ordered_json;

Json read_json(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  std::stringstream s;
  s << in.rdbuf();
  return Json::parse(s.str());
}

ModelText model_with_template(const std::string& family) {
  const std::string dir = std::string(PONDER_TEST_DATA_DIR) + "/chat_templates/" + family;
  auto tok = text::Tokenizer::load(std::string(PONDER_SOURCE_DIR) + "/models/tiny-reasoner");
  EXPECT_TRUE(tok.has_value());
  ModelText m{.model_dir = dir, .tokenizer = std::move(*tok)};
  auto tmpl = text::ChatTemplate::from_config(read_json(dir + "/tokenizer_config.json"));
  EXPECT_TRUE(tmpl.has_value()) << tmpl.error().to_string();
  m.use_chat_template(std::move(*tmpl));
  return m;
}

TEST(PreparePrompts, ToolCallHistoryWithStringArgumentsRendersAsTransformersDoes) {
  const std::pair<const char*, text::ToolCallFormat> families[] = {
      {"qwen3", text::ToolCallFormat::kHermes},
      {"llama3_1", text::ToolCallFormat::kLlama3Json},
      {"deepseek_v3", text::ToolCallFormat::kDeepSeekV3}};
  for (const auto& [family, format] : families) {
    const ModelText model = model_with_template(family);
    EXPECT_EQ(model.tool_call_format, format) << family;
    const Json golden =
        read_json(std::string(PONDER_TEST_DATA_DIR) + "/chat_templates/" + family + "/golden.json");
    int checked = 0;
    for (const Json& c : golden["cases"]) {
      if (c["name"] != "tool_call_with_content" && c["name"] != "tool_call_empty_content") continue;
      ASSERT_FALSE(c.contains("error")) << family << " " << c["name"];
      Json body = {{"messages", c["messages"]}};
      // What an OpenAI client sends: arguments as a JSON string (spacing of its own).
      for (Json& m : body["messages"])
        if (m.contains("tool_calls"))
          for (Json& call : m["tool_calls"])
            if (call["function"]["arguments"].is_object())
              call["function"]["arguments"] = call["function"]["arguments"].dump();
      if (!c["tools"].is_null()) body["tools"] = c["tools"];
      auto request = parse_completion_request(Endpoint::kChatCompletions, body, {});
      ASSERT_TRUE(request.has_value()) << request.error().message;
      auto prompts = prepare_prompts(*request, model);
      ASSERT_TRUE(prompts.has_value()) << family << ": " << prompts.error().message;
      EXPECT_EQ(model.tokenizer.decode((*prompts)[0].ids), c["expected"].get<std::string>())
          << family << " " << c["name"];
      ++checked;
    }
    EXPECT_EQ(checked, 2) << family;
  }
}

TEST(PreparePrompts, ArgumentsThatAreNotAJsonObjectAreNamed) {
  const ModelText model = model_with_template("qwen3");
  Json body = {{"messages",
                {{{"role", "user"}, {"content", "hi"}},
                 {{"role", "assistant"},
                  {"content", ""},
                  {"tool_calls",
                   {{{"id", "c"},
                     {"type", "function"},
                     {"function", {{"name", "f"}, {"arguments", "{not json"}}}}}}}}}};
  auto request = parse_completion_request(Endpoint::kChatCompletions, body, {});
  ASSERT_TRUE(request.has_value());
  auto prompts = prepare_prompts(*request, model);
  ASSERT_FALSE(prompts.has_value());
  EXPECT_EQ(prompts.error().param, "messages[1].tool_calls[0].function.arguments");
}

}  // namespace
}  // namespace ponder::coordinator::api
