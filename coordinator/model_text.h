// ModelText: everything textual about a served model — tokenizer, chat template, thinking
// delimiters — loaded once from its Hugging Face directory, and the engine options that follow
// from it (end-of-thinking and "Wait" tokens, token bytes for stop strings). The HTTP front
// renders and tokenizes with it; a replica's leader builds its engine options from it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "coordinator/text/chat_template.h"
#include "coordinator/text/reasoning_parser.h"
#include "coordinator/text/tokenizer.h"
#include "coordinator/text/tool_call_parser.h"
#include "worker/engine/engine.h"

namespace ponder::coordinator {

// generation_config.json's sampling defaults (what the model's authors set; unset: absent) and
// end-of-sequence ids.
struct GenerationDefaults {
  std::optional<double> temperature, top_p, min_p, repetition_penalty;  // as written
  std::optional<int32_t> top_k;
  std::optional<int64_t> max_new_tokens;
  std::vector<int32_t> eos_token_ids;

  // The sampling fields set here, over `base`.
  worker::SamplingParams apply(worker::SamplingParams base) const;
  // The fields set, as generation_config.json names them.
  nlohmann::ordered_json to_json() const;
  // From <model_dir>/generation_config.json; none when the file is absent. A key of the wrong
  // type or out of range is kInvalidArgument naming the file and the key.
  static Expected<GenerationDefaults> load(const std::string& model_dir);
};

struct ModelText {
  std::string model_dir;
  text::Tokenizer tokenizer;
  std::optional<text::ChatTemplate> chat_template;  // tokenizer_config.json's, when it has one
  std::optional<text::ReasoningConfig> reasoning;   // when the vocabulary has <think>/</think>
  std::vector<int32_t> think_start;                 // "<think>" as token ids
  std::vector<int32_t> think_end;                   // "</think>" as token ids
  std::vector<int32_t> wait_tokens;                 // "\nWait": what extend_thinking inserts
  // How the model writes tool calls: detected from the chat template (serve's tool_call_parser
  // overrides it); kNone: calls are not parsed.
  text::ToolCallFormat tool_call_format = text::ToolCallFormat::kNone;
  // The template prints a call's arguments with `tojson` (Llama-3.1, Qwen3), so it wants the
  // object; others (DeepSeek-V3) concatenate the JSON string OpenAI clients send.
  bool tool_arguments_as_objects = false;
  GenerationDefaults generation_defaults;  // generation_config.json; its eos ids end sequences

  // Takes `tmpl` as the chat template, and the tool-call format and argument style it implies.
  void use_chat_template(text::ChatTemplate tmpl);

  // kNotFound when the directory has no tokenizer.json; other load errors as they come.
  static Expected<ModelText> load(const std::string& model_dir);

  // Thinking delimiters and token bytes for stop strings; the caller sets budgets and limits.
  worker::EngineOptions engine_options() const;
};

}  // namespace ponder::coordinator
