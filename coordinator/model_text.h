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

struct ModelText {
  std::string model_dir;
  text::Tokenizer tokenizer;
  std::optional<text::ChatTemplate> chat_template;  // tokenizer_config.json's, when it has one
  std::optional<text::ReasoningConfig> reasoning;   // when the vocabulary has <think>/</think>
  std::vector<int32_t> think_end;                   // "</think>" as token ids
  std::vector<int32_t> wait_tokens;                 // "\nWait": what extend_thinking inserts
  // How the model writes tool calls: detected from the chat template (serve's tool_call_parser
  // overrides it); kNone: calls are not parsed.
  text::ToolCallFormat tool_call_format = text::ToolCallFormat::kNone;
  // The template prints a call's arguments with `tojson` (Llama-3.1, Qwen3), so it wants the
  // object; others (DeepSeek-V3) concatenate the JSON string OpenAI clients send.
  bool tool_arguments_as_objects = false;

  // Takes `tmpl` as the chat template, and the tool-call format and argument style it implies.
  void use_chat_template(text::ChatTemplate tmpl);

  // kNotFound when the directory has no tokenizer.json; other load errors as they come.
  static Expected<ModelText> load(const std::string& model_dir);

  // Thinking delimiters and token bytes for stop strings; the caller sets budgets and limits.
  worker::EngineOptions engine_options() const;
};

}  // namespace ponder::coordinator
