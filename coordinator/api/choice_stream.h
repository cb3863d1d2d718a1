// ChoiceStream: one choice's text as its engine outputs arrive — incremental detokenization
// (never a broken UTF-8 sequence), stop strings cut with hold-back, and the reasoning parser
// splitting `reasoning_content` from `content` — plus its logprobs. The same pipeline serves
// streaming (each delta sent) and whole responses (deltas concatenated), so both give the same
// text. One per choice; not thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/api/stop_filter.h"
#include "coordinator/text/reasoning_parser.h"
#include "coordinator/text/tokenizer.h"
#include "coordinator/text/tool_call_parser.h"
#include "worker/engine/request.h"

namespace ponder::coordinator::api {

struct ChoiceOptions {
  bool skip_special_tokens = true;
  std::vector<std::string> stop;
  bool include_stop_str_in_output = false;
  // Split reasoning from content with this configuration (starts_in_reasoning set per prompt);
  // nullopt: all text is content.
  std::optional<text::ReasoningConfig> reasoning;
  // Parse tool calls out of the content (never out of the reasoning); nullopt: none.
  struct ToolCalls {
    text::ToolCallFormat format = text::ToolCallFormat::kNone;
    std::vector<std::string> functions;  // the names a call may name
    bool parallel = true;                // false: calls after an answer's first are dropped
  };
  std::optional<ToolCalls> tool_calls;
  bool logprobs = false;
};

struct TokenAlternative {
  int32_t token = 0;
  std::string text;   // the token alone, decoded (U+FFFD for part of a character)
  std::string bytes;  // its raw bytes (Tokenizer::token_bytes)
  float logprob = 0.0f;
};

struct TokenLogprobEntry {
  int32_t token = 0;
  std::string text;      // the token alone, decoded
  std::string bytes;     // its raw bytes
  float logprob = 0.0f;  // NaN for tokens the engine inserted (thinking budgets)
  std::vector<TokenAlternative> top;
  int64_t text_offset = 0;  // bytes of completion text before this token
};

struct ChoiceDelta {
  std::string reasoning;
  std::string content;                     // all of the text when there is no reasoning split
  std::vector<text::ToolCall> tool_calls;  // calls completed in this delta
  std::vector<TokenLogprobEntry> logprobs;
  bool finished = false;
  std::string finish_reason;  // the engine's: "stop", "length", "cancelled", "error", ...
  std::string stop_reason;    // the stop string that ended the choice, if any
  std::string error;          // finish_reason "error"
  worker::Usage usage;        // on the finished delta

  bool has_text() const { return !reasoning.empty() || !content.empty() || !tool_calls.empty(); }
};

class ChoiceStream {
 public:
  ChoiceStream(const text::Tokenizer& tokenizer, ChoiceOptions options);

  // The text, logprobs and, on the last output, the finish that this output releases.
  ChoiceDelta push(const worker::EngineOutput& output);
  bool finished() const { return finished_; }
  // A stop string matched: the rest of this choice's tokens add no text.
  bool stopped() const { return stop_.matched(); }

 private:
  void release(std::string_view text, ChoiceDelta* delta);
  // Content after the reasoning split, through the tool-call parser when there is one.
  void release_content(std::string_view text, ChoiceDelta* delta);
  void add_calls(text::ToolCallSplit split, ChoiceDelta* delta);

  text::Tokenizer tokenizer_;
  ChoiceOptions options_;
  text::StreamDecoder decoder_;
  StopStringFilter stop_;
  std::optional<text::ReasoningParser> parser_;
  std::optional<text::ToolCallParser> tools_;
  int64_t calls_ = 0;  // tool calls released so far
  int64_t decoded_bytes_ = 0;
  bool finished_ = false;
};

}  // namespace ponder::coordinator::api
