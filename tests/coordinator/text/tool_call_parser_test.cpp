// ToolCallParser tests: the Hermes/Qwen, Llama-3 JSON and DeepSeek-V3 formats one-shot —
// calls, content around them, every kind of malformed call coming back as content — and
// streaming that equals the one-shot result for every split of the output at every byte position.
#include "coordinator/text/tool_call_parser.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace ponder::text {
namespace {

const std::vector<std::string> kTools = {"get_weather", "search"};

struct Case {
  const char* name;
  ToolCallFormat format;
  std::string text;
  std::string content;                                     // expected
  std::vector<std::pair<std::string, std::string>> calls;  // expected (name, arguments)
};

std::vector<Case> cases() {
  const auto H = ToolCallFormat::kHermes;
  const auto L = ToolCallFormat::kLlama3Json;
  const auto D = ToolCallFormat::kDeepSeekV3;
  const std::string weather = R"({"city":"Paris","days":2})";
  return {
      {"hermes_one",
       H,
       "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": "
       "2}}\n"
       "</tool_call>",
       "",
       {{"get_weather", weather}}},
      {"hermes_text_then_two",
       H,
       "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": "
       "\"Paris\", \"days\": 2}}\n</tool_call>\n<tool_call>\n{\"name\": \"search\", \"arguments\": "
       "{\"q\": \"a \\\"b\\\" <i>\"}}\n</tool_call>\n",
       "Let me check.\n",
       {{"get_weather", weather}, {"search", R"({"q":"a \"b\" <i>"})"}}},
      // An end marker inside a JSON string does not end the block: the arguments may quote it
      // (a constrained call can write any string, and must still parse as the call).
      {"hermes_end_marker_inside_string",
       H,
       R"(<tool_call>{"name": "search", "arguments": {"q": "</tool_call>"}}</tool_call>)",
       "",
       {{"search", R"({"q":"</tool_call>"})"}}},
      {"deepseek_end_markers_inside_string",
       D,
       "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>search\n```json\n"
       R"({"q": "<｜tool▁call▁end｜><｜tool▁calls▁end｜>"})"
       "\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
       "",
       {{"search", R"({"q":"<｜tool▁call▁end｜><｜tool▁calls▁end｜>"})"}}},
      {"hermes_arguments_as_string",
       H,
       R"(<tool_call>{"name": "search", "arguments": "{\"q\": \"x\"}"}</tool_call>)",
       "",
       {{"search", R"({"q":"x"})"}}},
      {"hermes_parameters_and_no_arguments",
       H,
       R"(<tool_call>{"name": "search", "parameters": {"q": 1}}</tool_call><tool_call>{"name": "get_weather"}</tool_call>)",
       "",
       {{"search", R"({"q":1})"}, {"get_weather", "{}"}}},
      {"hermes_array",
       H,
       R"(<tool_call>[{"name": "search", "arguments": {}}, {"name": "get_weather", "arguments": {}}]</tool_call>)",
       "",
       {{"search", "{}"}, {"get_weather", "{}"}}},
      {"hermes_unterminated_complete",
       H,
       "<tool_call>\n{\"name\": \"search\", \"arguments\": {\"q\": \"x\"}}\n",
       "",
       {{"search", R"({"q":"x"})"}}},
      {"hermes_space_before", H, "\n\n<tool_call>{\"name\": \"search\"}</tool_call>\n", "",
       {{"search", "{}"}}},
      {"hermes_space_before_malformed", H, "\n <tool_call>{\"name\": \"nope\"}</tool_call>",
       "\n <tool_call>{\"name\": \"nope\"}</tool_call>", {}},
      {"hermes_only_space", H, " \n ", "", {}},
      {"hermes_text_after_call",
       H,
       R"(<tool_call>{"name": "search", "arguments": {}}</tool_call>  Done.)",
       "  Done.",
       {{"search", "{}"}}},
      {"hermes_bad_json",
       H,
       "<tool_call>{\"name\": \"search\", \"arguments\": {\"q\": }</tool_call>",
       "<tool_call>{\"name\": \"search\", \"arguments\": {\"q\": }</tool_call>",
       {}},
      {"hermes_unknown_function",
       H,
       R"(<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>)",
       R"(<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>)",
       {}},
      {"hermes_arguments_not_object",
       H,
       R"(<tool_call>{"name": "search", "arguments": [1]}</tool_call>)",
       R"(<tool_call>{"name": "search", "arguments": [1]}</tool_call>)",
       {}},
      {"hermes_unterminated_incomplete",
       H,
       "ok <tool_call>{\"name\": \"sea",
       "ok <tool_call>{\"name\": \"sea",
       {}},
      {"hermes_marker_prefix_is_text", H, "a <tool_ b <tool_cal", "a <tool_ b <tool_cal", {}},
      {"hermes_bad_then_good",
       H,
       R"(<tool_call>{"name": "nope"}</tool_call><tool_call>{"name": "search"}</tool_call>)",
       R"(<tool_call>{"name": "nope"}</tool_call>)",
       {{"search", "{}"}}},
      {"llama_one",
       L,
       R"({"name": "get_weather", "parameters": {"city": "Paris", "days": 2}})",
       "",
       {{"get_weather", weather}}},
      {"llama_python_tag_two",
       L,
       R"(<|python_tag|>{"name": "search", "parameters": {"q": "}{"}}; {"name": "get_weather", "parameters": {}})",
       "",
       {{"search", R"({"q":"}{"})"}, {"get_weather", "{}"}}},
      {"llama_leading_space",
       L,
       "\n {\"name\": \"search\", \"arguments\": {}}\n",
       "",
       {{"search", "{}"}}},
      {"llama_text", L, "The answer is {42}.", "The answer is {42}.", {}},
      {"llama_json_not_a_call", L, R"({"answer": 42})", R"({"answer": 42})", {}},
      {"llama_call_then_text",
       L,
       R"({"name": "search", "parameters": {}} and more)",
       R"({"name": "search", "parameters": {}} and more)",
       {}},
      {"llama_tag_prefix_text", L, "<|pyt", "<|pyt", {}},
      {"deepseek_v3_two",
       D,
       "Checking.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n"
       "```json\n{\"city\": \"Paris\", \"days\": 2}\n```<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>"
       "function<｜tool▁sep｜>search\n```json\n{\"q\": \"x\"}\n```<｜tool▁call▁end｜>"
       "<｜tool▁calls▁end｜>",
       "Checking.",
       {{"get_weather", weather}, {"search", R"({"q":"x"})"}}},
      {"deepseek_v31",
       D,
       "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>search<｜tool▁sep｜>{\"q\": \"x\"}"
       "<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
       "",
       {{"search", R"({"q":"x"})"}}},
      {"deepseek_unterminated",
       D,
       "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>search\n```json\n{}\n```",
       "",
       {{"search", "{}"}}},
      {"deepseek_bad_json",
       D,
       "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>search\n```json\n{\n```"
       "<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
       "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>search\n```json\n{\n```"
       "<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
       {}},
      {"deepseek_no_sep",
       D,
       "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>search{}<｜tool▁calls▁end｜>",
       "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>search{}<｜tool▁calls▁end｜>",
       {}},
      {"none_format",
       ToolCallFormat::kNone,
       R"(<tool_call>{"name": "search"}</tool_call>)",
       R"(<tool_call>{"name": "search"}</tool_call>)",
       {}},
  };
}

void expect_split(const ToolCallSplit& got, const Case& c, const std::string& how) {
  EXPECT_EQ(got.content, c.content) << c.name << " " << how;
  ASSERT_EQ(got.calls.size(), c.calls.size()) << c.name << " " << how;
  for (size_t i = 0; i < c.calls.size(); ++i) {
    EXPECT_EQ(got.calls[i].name, c.calls[i].first) << c.name << " " << how;
    EXPECT_EQ(got.calls[i].arguments, c.calls[i].second) << c.name << " " << how;
  }
}

TEST(ToolCallParser, OneShotCallsContentAndMalformedCalls) {
  for (const Case& c : cases())
    expect_split(ToolCallParser::parse(c.text, c.format, kTools), c, "one-shot");
}

TEST(ToolCallParser, StreamingEqualsOneShotForEverySplit) {
  for (const Case& c : cases()) {
    for (size_t cut = 0; cut <= c.text.size(); ++cut) {
      ToolCallParser p(c.format, kTools);
      ToolCallSplit s = p.feed(std::string_view(c.text).substr(0, cut));
      s.append(p.feed(std::string_view(c.text).substr(cut)));
      s.append(p.finish());
      expect_split(s, c, "split at " + std::to_string(cut));
    }
    ToolCallParser bytewise(c.format, kTools);
    ToolCallSplit s;
    for (char ch : c.text) s.append(bytewise.feed(std::string_view(&ch, 1)));
    s.append(bytewise.finish());
    expect_split(s, c, "byte by byte");
  }
}

// Streaming never releases text that may still be the start of a call.
TEST(ToolCallParser, HoldsBackAPossibleStartAndReleasesCallsWhole) {
  ToolCallParser p(ToolCallFormat::kHermes, kTools);
  EXPECT_EQ(p.feed("Sure <tool").content, "Sure ");
  ToolCallSplit s = p.feed("_call>{\"name\": \"search\", ");
  EXPECT_EQ(s.content, "");
  EXPECT_TRUE(s.calls.empty());
  s = p.feed("\"arguments\": {}}</tool_call>");
  ASSERT_EQ(s.calls.size(), 1u);
  EXPECT_EQ(s.calls[0].name, "search");
  EXPECT_EQ(p.feed("\n").content, "");  // whitespace after a call is held, then dropped
  EXPECT_EQ(p.finish().content, "");

  ToolCallParser llama(ToolCallFormat::kLlama3Json, kTools);
  EXPECT_EQ(llama.feed("  ").content, "");
  EXPECT_EQ(llama.feed("Hello").content, "  Hello");  // text: released as it comes
  EXPECT_EQ(llama.feed(" {x}").content, " {x}");
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(ToolCallFormat, DetectedFromTheRealChatTemplates) {
  const std::pair<const char*, ToolCallFormat> families[] = {
      {"qwen3", ToolCallFormat::kHermes},
      {"deepseek_v3", ToolCallFormat::kDeepSeekV3},
      {"deepseek_r1", ToolCallFormat::kDeepSeekV3},
      {"llama3_1", ToolCallFormat::kLlama3Json},
      {"llama3", ToolCallFormat::kNone},
  };
  for (const auto& [family, want] : families) {
    const std::string path =
        std::string(PONDER_TEST_DATA_DIR) + "/chat_templates/" + family + "/tokenizer_config.json";
    auto config = nlohmann::json::parse(read_file(path));
    EXPECT_EQ(detect_tool_call_format(config.at("chat_template").get<std::string>()), want)
        << family;
  }
}

TEST(ToolCallFormat, NamesRoundTripAndUnknownNamesAreErrors) {
  for (ToolCallFormat f : {ToolCallFormat::kNone, ToolCallFormat::kHermes,
                           ToolCallFormat::kLlama3Json, ToolCallFormat::kDeepSeekV3}) {
    auto parsed = parse_tool_call_format(tool_call_format_name(f));
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(*parsed, f);
  }
  EXPECT_EQ(*parse_tool_call_format("qwen3"), ToolCallFormat::kHermes);
  auto bad = parse_tool_call_format("mistral");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message().find("'mistral'"), std::string::npos);
}

}  // namespace
}  // namespace ponder::text
