// ChatTemplate tests: real chat templates rendered for many conversations and compared byte for
// byte with transformers + jinja2 (tests/data/chat_templates/<family>/golden.json); loading,
// errors.
#include "coordinator/text/chat_template.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace ponder::text {
namespace {

using nlohmann::ordered_json;
namespace fs = std::filesystem;

const fs::path kFixtures = fs::path(PONDER_TEST_DATA_DIR) / "chat_templates";

ordered_json load_json(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return ordered_json::parse(buffer.str());
}

struct GoldenCase {
  std::string family;
  std::string name;
};

std::vector<GoldenCase> golden_cases() {
  std::vector<GoldenCase> cases;
  std::vector<fs::path> dirs;
  for (const auto& entry : fs::directory_iterator(kFixtures)) {
    if (fs::exists(entry.path() / "golden.json")) dirs.push_back(entry.path());
  }
  std::sort(dirs.begin(), dirs.end());
  for (const fs::path& dir : dirs) {
    const ordered_json golden = load_json(dir / "golden.json");
    for (const auto& c : golden.at("cases"))
      cases.push_back({dir.filename().string(), c.at("name")});
  }
  return cases;
}

class GoldenChatTest : public testing::TestWithParam<GoldenCase> {};

TEST_P(GoldenChatTest, MatchesTransformers) {
  const GoldenCase& g = GetParam();
  static std::map<std::string, ordered_json> goldens;
  if (!goldens.count(g.family)) goldens[g.family] = load_json(kFixtures / g.family / "golden.json");
  const ordered_json* c = nullptr;
  for (const auto& candidate : goldens[g.family].at("cases")) {
    if (candidate.at("name") == g.name) c = &candidate;
  }
  ASSERT_NE(c, nullptr);
  Expected<ChatTemplate> tmpl = ChatTemplate::load(kFixtures / g.family);
  ASSERT_TRUE(tmpl.has_value()) << tmpl.error().to_string();
  Expected<std::string> out =
      tmpl->render(c->at("messages"), c->at("add_generation_prompt").get<bool>(), c->at("kwargs"),
                   c->at("tools"));
  if (c->contains("error")) {
    EXPECT_FALSE(out.has_value()) << "transformers raised " << c->at("error")
                                  << " but ponder rendered:\n"
                                  << *out;
    return;
  }
  ASSERT_TRUE(out.has_value()) << out.error().to_string();
  EXPECT_EQ(*out, c->at("expected").get<std::string>());
}

INSTANTIATE_TEST_SUITE_P(Families, GoldenChatTest, testing::ValuesIn(golden_cases()),
                         [](const testing::TestParamInfo<GoldenCase>& info) {
                           return info.param.family + "_" + info.param.name;
                         });

TEST(ChatTemplateGolden, CoversTheRequiredFamiliesAndConversations) {
  for (const char* family : {"llama3", "qwen3", "deepseek_v3"}) {
    ASSERT_TRUE(fs::exists(kFixtures / family / "golden.json")) << family;
    ordered_json golden = load_json(kFixtures / family / "golden.json");
    size_t rendered = 0;
    for (const auto& c : golden.at("cases")) rendered += c.contains("expected");
    EXPECT_GE(rendered, 20u) << family;
  }
}

TEST(ChatTemplateLoad, ReadsSpecialTokensFromStringsAndAddedTokens) {
  Expected<ChatTemplate> llama = ChatTemplate::load(kFixtures / "llama3");
  ASSERT_TRUE(llama.has_value()) << llama.error().to_string();
  EXPECT_EQ(llama->bos_token(), "<|begin_of_text|>");
  EXPECT_EQ(llama->eos_token(), "<|eot_id|>");
  Expected<ChatTemplate> deepseek = ChatTemplate::load(kFixtures / "deepseek_v3");
  ASSERT_TRUE(deepseek.has_value()) << deepseek.error().to_string();
  EXPECT_EQ(deepseek->bos_token(), "<｜begin▁of▁sentence｜>");
  Expected<ChatTemplate> qwen = ChatTemplate::load(kFixtures / "qwen3");
  ASSERT_TRUE(qwen.has_value());
  EXPECT_EQ(qwen->bos_token(), "");  // null in the config
  EXPECT_EQ(qwen->eos_token(), "<|im_end|>");
}

TEST(ChatTemplateLoad, PicksDefaultAndToolUseFromNamedTemplates) {
  ordered_json config = {{"bos_token", "<s>"},
                         {"chat_template",
                          {{{"name", "tool_use"}, {"template", "TOOLS{{ tools | length }}"}},
                           {{"name", "default"}, {"template", "{{ bos_token }}DEFAULT"}}}}};
  Expected<ChatTemplate> tmpl = ChatTemplate::from_config(config);
  ASSERT_TRUE(tmpl.has_value()) << tmpl.error().to_string();
  EXPECT_TRUE(tmpl->has_tool_use_template());
  ordered_json messages = ordered_json::array({{{"role", "user"}, {"content", "hi"}}});
  EXPECT_EQ(tmpl->render(messages, false).value(), "<s>DEFAULT");
  ordered_json tools = ordered_json::array({{{"type", "function"}}});
  EXPECT_EQ(tmpl->render(messages, false, nullptr, tools).value(), "TOOLS1");
}

TEST(ChatTemplateLoad, ChatTemplateJinjaFileTakesPrecedence) {
  fs::path dir = fs::temp_directory_path() / ("ponder_chat_template_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "tokenizer_config.json")
      << R"({"eos_token": "</s>", "chat_template": "CONFIG"})";
  std::ofstream(dir / "chat_template.jinja")
      << "{% for m in messages %}{{ m.content }}{% endfor %}{{ eos_token }}\n";
  Expected<ChatTemplate> tmpl = ChatTemplate::load(dir);
  ASSERT_TRUE(tmpl.has_value()) << tmpl.error().to_string();
  EXPECT_EQ(
      tmpl->render(ordered_json::parse(R"([{"role": "user", "content": "x"}])"), false).value(),
      "x</s>");
  fs::remove_all(dir);
}

TEST(ChatTemplateLoad, MissingOrBrokenTemplatesAreReported) {
  Expected<ChatTemplate> none = ChatTemplate::load(kFixtures / "does_not_exist");
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error().code(), StatusCode::kNotFound);
  Expected<ChatTemplate> no_key = ChatTemplate::from_config({{"bos_token", "<s>"}});
  ASSERT_FALSE(no_key.has_value());
  EXPECT_EQ(no_key.error().code(), StatusCode::kNotFound);
  Expected<ChatTemplate> broken =
      ChatTemplate::from_config({{"chat_template", "ok\n{% for m in messages %}"}}, "model/x.json");
  ASSERT_FALSE(broken.has_value());
  EXPECT_NE(broken.error().message().find("model/x.json"), std::string::npos);
  EXPECT_NE(broken.error().message().find("line 2"), std::string::npos) << broken.error().message();
  Expected<ChatTemplate> bad_token =
      ChatTemplate::from_config({{"chat_template", "x"}, {"bos_token", 5}});
  ASSERT_FALSE(bad_token.has_value());
  EXPECT_NE(bad_token.error().message().find("bos_token"), std::string::npos);
}

TEST(ChatTemplateRender, RejectsMalformedRequests) {
  Expected<ChatTemplate> tmpl = ChatTemplate::load(kFixtures / "qwen3");
  ASSERT_TRUE(tmpl.has_value());
  EXPECT_FALSE(tmpl->render(ordered_json::object(), true).has_value());
  EXPECT_FALSE(tmpl->render(ordered_json::array({"not an object"}), true).has_value());
  ordered_json messages = ordered_json::parse(R"([{"role": "user", "content": "hi"}])");
  Expected<std::string> reserved = tmpl->render(messages, true, {{"messages", 1}});
  ASSERT_FALSE(reserved.has_value());
  EXPECT_NE(reserved.error().message().find("reserved"), std::string::npos);
  EXPECT_FALSE(tmpl->render(messages, true, nullptr, {{"not", "a list"}}).has_value());
}

TEST(ChatTemplateRender, TemplateExceptionsReachTheCaller) {
  Expected<ChatTemplate> tmpl = ChatTemplate::load(kFixtures / "llama3_1");
  ASSERT_TRUE(tmpl.has_value());
  ordered_json messages = ordered_json::parse(R"([
    {"role": "user", "content": "hi"},
    {"role": "assistant", "tool_calls": [
      {"type": "function", "function": {"name": "a", "arguments": {}}},
      {"type": "function", "function": {"name": "b", "arguments": {}}}]}])");
  Expected<std::string> out = tmpl->render(messages, true);
  ASSERT_FALSE(out.has_value());
  EXPECT_EQ(out.error().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(out.error().message().find("This model only supports single tool-calls at once!"),
            std::string::npos)
      << out.error().message();
}

TEST(ChatTemplateRender, ReasoningAliasesReachTemplates) {
  Expected<ChatTemplate> tmpl = ChatTemplate::from_config(
      {{"chat_template",
        "{% for m in messages %}[{{ m.reasoning_content }}|{{ m.thinking }}]{% endfor %}"}});
  ASSERT_TRUE(tmpl.has_value());
  ordered_json messages = ordered_json::parse(R"([
    {"role": "assistant", "content": "a", "reasoning": "r1"},
    {"role": "assistant", "content": "b", "thinking": "r2"},
    {"role": "assistant", "content": "c", "reasoning_content": null}])");
  EXPECT_EQ(tmpl->render(messages, false).value(), "[r1|r1][r2|r2][None|]");
}

TEST(ChatTemplateRender, AcceptsPlainJsonToo) {
  Expected<ChatTemplate> tmpl = ChatTemplate::load(kFixtures / "qwen3");
  ASSERT_TRUE(tmpl.has_value());
  nlohmann::json messages = nlohmann::json::parse(R"([{"role": "user", "content": "hi"}])");
  EXPECT_EQ(tmpl->render(messages, true, {{"enable_thinking", false}}).value(),
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
}

}  // namespace
}  // namespace ponder::text
