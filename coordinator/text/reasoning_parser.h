// ReasoningParser: splits a reasoning model's output into `reasoning_content` and `content`
// (<think>...</think> of DeepSeek-R1 and Qwen3, or any per-model delimiters), one-shot or
// streaming.
//
// Streaming never emits bytes that could still turn out to be part of a delimiter, nor an
// incomplete UTF-8 sequence; after finish() the concatenated deltas equal parse() of the whole
// text, however the text was split. Thread-safety: one parser is one request's state.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/status.h"

namespace ponder::text {

// Where a model's reasoning starts and ends in its output. Parsed from the model's
// configuration (see from_json) and validated at load.
//
//   Qwen3 (model writes <think>):          {"start": "<think>", "end": "</think>"}
//   DeepSeek-R1 (prompt ends "<think>\n"): {"start": "<think>", "end": "</think>",
//                                           "starts_in_reasoning": true}
//   s1-style:                              {"start": "<|im_start|>think",
//                                           "end": "<|im_start|>answer"}
struct ReasoningConfig {
  // Delimiter that opens the reasoning block. Recognized once, at any point before the block;
  // the text before it is content. May be empty only when starts_in_reasoning is true.
  std::string start = "<think>";
  // Delimiter that closes the block. Everything after it is content (later delimiters included).
  // Output that never closes the block is all reasoning.
  std::string end = "</think>";
  // The prompt already opened the block (DeepSeek-R1's template ends the prompt with "<think>\n"),
  // so output starts inside the reasoning. Decide it per request with prompt_opens_reasoning()
  // when one model serves both modes (Qwen3's enable_thinking).
  bool starts_in_reasoning = false;
  // Drop the newlines templates put around the delimiters: '\n's right after `start`, right
  // before and right after `end`, and whitespace-only text before `start`. Off: exact bytes,
  // so that start + reasoning + end + content reproduces the output.
  bool trim_newlines = true;

  // kInvalidArgument when `end` is empty, `start` is empty without starts_in_reasoning, or
  // trim_newlines is on and `end` begins with '\n'.
  Status validate() const;

  // Keys: "start", "end" (strings), "starts_in_reasoning", "trim_newlines" (booleans); absent
  // keys keep the defaults above. Unknown keys and wrong types are errors naming `origin` and
  // the key.
  static Expected<ReasoningConfig> from_json(const nlohmann::json& j,
                                             std::string_view origin = "reasoning config");
};

// Reasoning and answer text: a whole parse, or what one feed() call released.
struct ReasoningSplit {
  std::string reasoning;
  std::string content;

  void append(const ReasoningSplit& other) {
    reasoning += other.reasoning;
    content += other.content;
  }
};

// True when `prompt` leaves a reasoning block open (its last `start` comes after its last `end`),
// i.e. generation continues inside the reasoning. With an empty `start` this is
// config.starts_in_reasoning.
bool prompt_opens_reasoning(std::string_view prompt, const ReasoningConfig& config);

class ReasoningParser {
 public:
  enum class Phase {
    kBeforeReasoning,  // looking for `start`
    kReasoning,        // inside the block, looking for `end`
    kAfterReasoning,   // block closed: the rest is content
  };

  // `config` must be valid (validate()); an invalid one is a bug of the caller.
  explicit ReasoningParser(ReasoningConfig config);

  // Feeds the next chunk of output; returns what can be released now.
  ReasoningSplit feed(std::string_view chunk);
  // End of output: releases everything held back.
  ReasoningSplit finish();

  Phase phase() const { return phase_; }

  // One-shot split of a complete output.
  static ReasoningSplit parse(std::string_view text, const ReasoningConfig& config);

 private:
  void step_before(ReasoningSplit& out);
  void step_reasoning(ReasoningSplit& out);
  void step_after(ReasoningSplit& out);

  ReasoningConfig config_;
  Phase phase_;
  std::string pending_;           // received but not yet released
  bool seen_non_space_ = false;   // kBeforeReasoning: released content has non-whitespace
  bool at_block_start_ = true;    // kReasoning: still dropping newlines after `start`
  bool at_content_start_ = true;  // kAfterReasoning: still dropping newlines after `end`
};

}  // namespace ponder::text
