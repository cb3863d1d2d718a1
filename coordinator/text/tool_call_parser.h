// ToolCallParser: finds the tool calls a model wrote into its answer (the `content` left after the
// reasoning split) and turns them into OpenAI `tool_calls`, one-shot or streaming.
//
// Formats, by model family (docs/api.md, "Tool calling"):
//   kHermes      Hermes / Qwen2.5 / Qwen3:   <tool_call>{"name": …, "arguments": {…}}</tool_call>
//   kLlama3Json  Llama-3.1/3.2 JSON calls:   [<|python_tag|>]{"name": …, "parameters": {…}}[; …]
//                                            as the whole answer
//   kDeepSeekV3  DeepSeek-V3 / R1:           <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function
//                                            <｜tool▁sep｜>NAME\n```json\n{…}\n```<｜tool▁call▁end｜>
//                                            …<｜tool▁calls▁end｜> (and V3.1's
//                                            NAME<｜tool▁sep｜>{…})
//
// A call block is released whole once it is complete, after its JSON has parsed and its function
// was checked against the request's tools: a block that is malformed — bad JSON, no name, a
// function the request did not offer — comes back as content, verbatim, never half as a call.
// Streaming holds back text that may still be the start of a block (like a stop string), so that
// after finish() the concatenated outputs of feed() equal parse() of the whole text, however it
// was split. Whitespace before, between and after calls is dropped. One parser is one choice's state.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace ponder::text {

enum class ToolCallFormat { kNone, kHermes, kLlama3Json, kDeepSeekV3 };

// "none", "hermes" (also "qwen3", "qwen2.5"), "llama3_json", "deepseek_v3"; anything else is
// kInvalidArgument naming the accepted values.
Expected<ToolCallFormat> parse_tool_call_format(std::string_view name);
std::string_view tool_call_format_name(ToolCallFormat format);
// The format a chat template teaches its model: its tool-call markers, or Llama-3.1's
// "<|python_tag|>" / ipython environment. kNone when the template has none of them.
ToolCallFormat detect_tool_call_format(std::string_view chat_template_source);

struct ToolCall {
  std::string name;
  std::string arguments;  // a JSON object, compact
};

struct ToolCallSplit {
  std::string content;
  std::vector<ToolCall> calls;

  void append(ToolCallSplit other);
};

class ToolCallParser {
 public:
  // `functions`: the names a call may name (the request's tools, or the one tool_choice names).
  ToolCallParser(ToolCallFormat format, std::vector<std::string> functions);

  // Feeds the next piece of content; returns what can be released now.
  ToolCallSplit feed(std::string_view text);
  // End of output: releases everything held back; an unterminated last block is still a call
  // when its JSON is complete.
  ToolCallSplit finish();

  // One-shot parse of a complete answer.
  static ToolCallSplit parse(std::string_view text, ToolCallFormat format,
                             std::vector<std::string> functions);

 private:
  enum class State {
    kText,       // outside blocks, looking for the start marker
    kBlock,      // inside a block, looking for its end marker
    kJsonCalls,  // kLlama3Json: the answer opened with JSON, held to the end
    kPlainText,  // kLlama3Json: the answer is text; no call can follow
  };

  void step(ToolCallSplit& out, bool at_end);
  void release_text(std::string_view text, ToolCallSplit& out);
  // The block's calls, or false when any of them is malformed.
  bool parse_block(std::string_view body, std::vector<ToolCall>* calls) const;
  bool parse_json_calls(std::string_view text, std::vector<ToolCall>* calls) const;
  bool read_call_object(std::string_view json_text, std::vector<ToolCall>* calls) const;
  bool allowed(const std::string& name) const;

  ToolCallFormat format_;
  std::vector<std::string> functions_;
  std::string start_;  // block markers (kHermes, kDeepSeekV3)
  std::string end_;
  State state_;
  std::string pending_;      // received, not yet released
  std::string held_space_;  // whitespace at the start or after a call, dropped unless text follows
  bool hold_space_ = true;  // no text yet since the start or the last call: whitespace is held
  std::string block_space_;  // the held whitespace before the current block
};

}  // namespace ponder::text
