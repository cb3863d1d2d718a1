// GenerationDefaults: generation_config.json read as transformers writes it (the bundled tiny
// reasoner's and the tool caller's), applied over ponder's sampling defaults, and every malformed
// key an error naming the file and the key; ModelText picks the tool-call format of its template.
#include "coordinator/model_text.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace ponder::coordinator {
namespace {

std::string scratch_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("ponder-gen-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir.string();
}

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

TEST(GenerationDefaults, ReadsTheBundledModelsFiles) {
  auto tiny = GenerationDefaults::load(std::string(PONDER_SOURCE_DIR) + "/models/tiny-reasoner");
  ASSERT_TRUE(tiny.has_value()) << tiny.error().to_string();
  EXPECT_EQ(tiny->temperature, 0.8);
  EXPECT_EQ(tiny->top_k, 0);
  EXPECT_EQ(tiny->max_new_tokens, 1024);
  EXPECT_EQ(tiny->eos_token_ids, (std::vector<int32_t>{2, 0}));
  worker::SamplingParams s = tiny->apply({});
  EXPECT_FLOAT_EQ(s.temperature, 0.8f);
  EXPECT_FLOAT_EQ(s.top_p, 1.0f);
  EXPECT_FLOAT_EQ(s.repetition_penalty, 1.0f);  // unset: ponder's own

  auto text = ModelText::load(std::string(PONDER_TEST_DATA_DIR) + "/models/tiny-tool-caller");
  ASSERT_TRUE(text.has_value()) << text.error().to_string();
  EXPECT_EQ(text->tool_call_format, text::ToolCallFormat::kHermes);
  EXPECT_TRUE(text->tool_arguments_as_objects);
  EXPECT_EQ(
      text->generation_defaults.to_json().dump(),
      R"({"temperature":0.6,"top_p":0.95,"top_k":20,"max_new_tokens":256,"eos_token_id":[2]})");
  EXPECT_EQ(text->engine_options().eos_token_ids, (std::vector<int32_t>{2}));
}

TEST(GenerationDefaults, AbsentFileAndNullsAreUnset) {
  const std::string dir = scratch_dir("absent");
  auto none = GenerationDefaults::load(dir);
  ASSERT_TRUE(none.has_value());
  EXPECT_EQ(none->to_json().dump(), "{}");
  write(dir + "/generation_config.json", R"({"temperature": null, "eos_token_id": 7})");
  auto some = GenerationDefaults::load(dir);
  ASSERT_TRUE(some.has_value());
  EXPECT_FALSE(some->temperature.has_value());
  EXPECT_EQ(some->eos_token_ids, (std::vector<int32_t>{7}));
  std::filesystem::remove_all(dir);
}

TEST(GenerationDefaults, MalformedKeysAreNamed) {
  const std::string dir = scratch_dir("bad");
  const std::pair<const char*, const char*> cases[] = {
      {R"({"temperature": "hot"})", "'temperature'"},
      {R"({"temperature": -1})", "'temperature'"},
      {R"({"top_p": 0})", "'top_p'"},
      {R"({"top_p": 1.5})", "'top_p'"},
      {R"({"min_p": 2})", "'min_p'"},
      {R"({"repetition_penalty": 0})", "'repetition_penalty'"},
      {R"({"top_k": 1.5})", "'top_k'"},
      {R"({"max_new_tokens": 0})", "'max_new_tokens'"},
      {R"({"eos_token_id": [1, "a"]})", "'eos_token_id'"},
      {"[1]", "not a JSON object"},
      {"{", "not a JSON object"},
  };
  for (const auto& [json, want] : cases) {
    write(dir + "/generation_config.json", json);
    auto d = GenerationDefaults::load(dir);
    ASSERT_FALSE(d.has_value()) << json;
    EXPECT_NE(d.error().message().find(want), std::string::npos) << d.error().message();
    EXPECT_NE(d.error().message().find("generation_config.json"), std::string::npos);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ponder::coordinator
