// ReasoningParser tests: one-shot splits for R1 / Qwen3 / s1-style outputs, and streaming that
// equals the one-shot result for every split of the output at every byte position.
#include "coordinator/text/reasoning_parser.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace ponder::text {
namespace {

ReasoningConfig think_tags() { return ReasoningConfig{}; }

ReasoningConfig r1_style() {
  ReasoningConfig c;
  c.starts_in_reasoning = true;
  return c;
}

ReasoningConfig s1_style() {
  ReasoningConfig c;
  c.start = "<|im_start|>think";
  c.end = "<|im_start|>answer";
  return c;
}

ReasoningConfig cjk_delimiters() {
  ReasoningConfig c;
  c.start = "【思考】";
  c.end = "【回答】";
  return c;
}

ReasoningConfig exact_bytes() {
  ReasoningConfig c;
  c.trim_newlines = false;
  return c;
}

struct Sample {
  const char* name;
  ReasoningConfig config;
  std::string text;
  std::string reasoning;
  std::string content;
};

std::vector<Sample> samples() {
  return {
      {"qwen3_thinking", think_tags(), "<think>\nLet me add: 2+2.\n</think>\n\nThe answer is 4.",
       "Let me add: 2+2.", "The answer is 4."},
      {"qwen3_no_thinking", think_tags(), "The answer is 4.", "", "The answer is 4."},
      {"qwen3_empty_think", think_tags(), "<think>\n\n</think>\n\nHi!", "", "Hi!"},
      {"r1_prefilled", r1_style(), "Okay, so 2+2.\nThat is 4.\n</think>\n\n**4**",
       "Okay, so 2+2.\nThat is 4.", "**4**"},
      {"r1_never_closes", r1_style(), "Hmm, é 中文 😀 and </thi", "Hmm, é 中文 😀 and </thi", ""},
      {"unclosed_after_start", think_tags(), "<think>\nstill thinking 😀\n\n", "still thinking 😀",
       ""},
      {"only_start", think_tags(), "<think>", "", ""},
      {"content_before_start", think_tags(), "Sure. <think>hmm</think>Done", "hmm", "Sure. Done"},
      {"whitespace_before_start", think_tags(), " \n\n<think>x</think>\ny", "x", "y"},
      {"stray_end_is_content", think_tags(), "no tags </think> here", "", "no tags </think> here"},
      {"second_block_is_content", think_tags(), "<think>a</think>b<think>c</think>d", "a",
       "b<think>c</think>d"},
      {"near_misses", think_tags(), "<think><thin</thin</think></think>x", "<thin</thin",
       "</think>x"},
      {"angle_before_end", think_tags(), "<think>a<</think>b", "a<", "b"},
      {"inner_newlines_kept", think_tags(), "<think>\n\na\n\nb\n\n</think>\n\n\nc\n", "a\n\nb",
       "c\n"},
      {"s1_style", s1_style(), "<|im_start|>think\nStep 1: 2+2.\n<|im_start|>answer\nAnswer: 4",
       "Step 1: 2+2.", "Answer: 4"},
      {"s1_partial_end", s1_style(), "<|im_start|>think\nStep<|im_start|>ans",
       "Step<|im_start|>ans", ""},
      {"cjk_delimiters", cjk_delimiters(), "【思考】推理😀【回答】答案【回", "推理😀", "答案【回"},
      {"exact_bytes", exact_bytes(), "<think>\nA\n</think>\n\nB", "\nA\n", "\n\nB"},
      {"exact_bytes_whitespace_before", exact_bytes(), " <think>A</think>", "A", " "},
      {"empty_output", think_tags(), "", "", ""},
      {"empty_output_r1", r1_style(), "", "", ""},
      {"whitespace_only", think_tags(), " \n ", "", " \n "},
  };
}

bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

// Feeds `text` cut at `cuts` (ascending byte positions) and checks every delta on the way.
ReasoningSplit stream(const Sample& s, const std::vector<size_t>& cuts) {
  ReasoningParser parser(s.config);
  ReasoningSplit total;
  size_t prev = 0;
  auto check = [&](const ReasoningSplit& delta) {
    EXPECT_TRUE(valid_utf8(delta.reasoning)) << s.name;
    EXPECT_TRUE(valid_utf8(delta.content)) << s.name;
    total.append(delta);
    // Released text is final: it is always a prefix of the one-shot result.
    EXPECT_EQ(s.reasoning.compare(0, total.reasoning.size(), total.reasoning), 0) << s.name;
    EXPECT_EQ(s.content.compare(0, total.content.size(), total.content), 0) << s.name;
  };
  for (size_t cut : cuts) {
    check(parser.feed(std::string_view(s.text).substr(prev, cut - prev)));
    prev = cut;
  }
  check(parser.feed(std::string_view(s.text).substr(prev)));
  check(parser.finish());
  return total;
}

TEST(ReasoningParser, OneShotSplits) {
  for (const Sample& s : samples()) {
    ReasoningSplit r = ReasoningParser::parse(s.text, s.config);
    EXPECT_EQ(r.reasoning, s.reasoning) << s.name;
    EXPECT_EQ(r.content, s.content) << s.name;
  }
}

TEST(ReasoningParser, StreamingEqualsOneShotForEverySingleSplit) {
  for (const Sample& s : samples()) {
    for (size_t cut = 0; cut <= s.text.size(); ++cut) {
      ReasoningSplit r = stream(s, {cut});
      ASSERT_EQ(r.reasoning, s.reasoning) << s.name << " cut at byte " << cut;
      ASSERT_EQ(r.content, s.content) << s.name << " cut at byte " << cut;
    }
  }
}

TEST(ReasoningParser, StreamingEqualsOneShotForEveryPairOfSplits) {
  for (const Sample& s : samples()) {
    for (size_t a = 0; a <= s.text.size(); ++a) {
      for (size_t b = a; b <= s.text.size(); ++b) {
        ReasoningSplit r = stream(s, {a, b});
        ASSERT_EQ(r.reasoning, s.reasoning) << s.name << " cuts " << a << "," << b;
        ASSERT_EQ(r.content, s.content) << s.name << " cuts " << a << "," << b;
      }
    }
  }
}

TEST(ReasoningParser, StreamingByteByByteAndRandomChunks) {
  std::mt19937 rng(1234);
  for (const Sample& s : samples()) {
    std::vector<size_t> every;
    for (size_t i = 1; i < s.text.size(); ++i) every.push_back(i);
    ReasoningSplit r = stream(s, every);
    EXPECT_EQ(r.reasoning, s.reasoning) << s.name;
    EXPECT_EQ(r.content, s.content) << s.name;
    for (int trial = 0; trial < 50; ++trial) {
      std::vector<size_t> cuts;
      for (size_t i = 1; i < s.text.size(); ++i) {
        if (rng() % 3 == 0) cuts.push_back(i);
      }
      r = stream(s, cuts);
      ASSERT_EQ(r.reasoning, s.reasoning) << s.name;
      ASSERT_EQ(r.content, s.content) << s.name;
    }
  }
}

TEST(ReasoningParser, HoldsBackPartialDelimitersUntilResolved) {
  ReasoningParser parser(think_tags());
  ReasoningSplit d = parser.feed("<thi");
  EXPECT_EQ(d.reasoning, "");
  EXPECT_EQ(d.content, "");
  EXPECT_EQ(parser.phase(), ReasoningParser::Phase::kBeforeReasoning);
  d = parser.feed("nk>\nabc</th");
  EXPECT_EQ(parser.phase(), ReasoningParser::Phase::kReasoning);
  EXPECT_EQ(d.reasoning, "abc");  // "</th" might start "</think>": not released
  d = parser.feed("ere");
  EXPECT_EQ(d.reasoning, "</there");  // it did not
  d = parser.feed("\n");
  EXPECT_EQ(d.reasoning, "");  // a newline right before "</think>" would be trimmed
  d = parser.feed("</think>\n\nAns");
  EXPECT_EQ(d.reasoning, "");
  EXPECT_EQ(d.content, "Ans");
  EXPECT_EQ(parser.phase(), ReasoningParser::Phase::kAfterReasoning);
  d = parser.finish();
  EXPECT_EQ(d.reasoning, "");
  EXPECT_EQ(d.content, "");
}

TEST(ReasoningParser, HoldsBackIncompleteUtf8) {
  ReasoningParser parser(r1_style());
  std::string emoji = "😀";
  ReasoningSplit d = parser.feed("a" + emoji.substr(0, 2));
  EXPECT_EQ(d.reasoning, "a");
  d = parser.feed(emoji.substr(2));
  EXPECT_EQ(d.reasoning, emoji);
}

TEST(ReasoningConfig, ValidatesAndParsesFromJson) {
  EXPECT_TRUE(ReasoningConfig{}.validate().ok());
  ReasoningConfig no_end;
  no_end.end = "";
  EXPECT_FALSE(no_end.validate().ok());
  ReasoningConfig no_start;
  no_start.start = "";
  EXPECT_FALSE(no_start.validate().ok());
  no_start.starts_in_reasoning = true;
  EXPECT_TRUE(no_start.validate().ok());

  Expected<ReasoningConfig> s1 = ReasoningConfig::from_json(
      {{"start", "<|im_start|>think"}, {"end", "<|im_start|>answer"}, {"trim_newlines", true}});
  ASSERT_TRUE(s1.has_value()) << s1.error().to_string();
  EXPECT_EQ(s1->start, "<|im_start|>think");
  EXPECT_FALSE(s1->starts_in_reasoning);

  Expected<ReasoningConfig> unknown =
      ReasoningConfig::from_json({{"begin", "<think>"}}, "models.yaml");
  ASSERT_FALSE(unknown.has_value());
  EXPECT_NE(unknown.error().message().find("models.yaml"), std::string::npos);
  EXPECT_NE(unknown.error().message().find("'begin'"), std::string::npos);
  Expected<ReasoningConfig> wrong_type =
      ReasoningConfig::from_json({{"starts_in_reasoning", "yes"}});
  ASSERT_FALSE(wrong_type.has_value());
  EXPECT_NE(wrong_type.error().message().find("starts_in_reasoning"), std::string::npos);
  EXPECT_FALSE(ReasoningConfig::from_json({{"end", ""}}).has_value());
}

TEST(ReasoningConfig, PromptDecidesWhetherOutputStartsInsideReasoning) {
  ReasoningConfig c = think_tags();
  // DeepSeek-R1's generation prompt pre-fills the opening tag.
  EXPECT_TRUE(prompt_opens_reasoning("<｜User｜>hi<｜Assistant｜><think>\n", c));
  // Qwen3 with enable_thinking=false closes an empty block in the prompt.
  EXPECT_FALSE(prompt_opens_reasoning("<|im_start|>assistant\n<think>\n\n</think>\n\n", c));
  // Qwen3 thinking mode: the model writes <think> itself.
  EXPECT_FALSE(prompt_opens_reasoning("<|im_start|>assistant\n", c));
  // Earlier turns with closed blocks do not count.
  EXPECT_TRUE(prompt_opens_reasoning("<think>a</think>b<think>\n", c));
}

}  // namespace
}  // namespace ponder::text
