// ResponseAssembler: the choices of one completion request (prompts × n samples) as their engine
// outputs arrive, in OpenAI's formats — chat.completion / text_completion objects, or the
// Server-Sent Events of a stream (role chunks first, text deltas, finish_reason in each choice's
// last chunk, the usage chunk with empty choices when asked for, then `data: [DONE]`).
// Not thread-safe: one request's state, used from one strand.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/api/api_error.h"
#include "coordinator/api/choice_stream.h"
#include "coordinator/api/completion_request.h"
#include "coordinator/text/tokenizer.h"
#include "worker/engine/request.h"

namespace ponder::coordinator::api {

struct ResponseMeta {
  Endpoint endpoint = Endpoint::kChatCompletions;
  std::string id;       // "chatcmpl-…" / "cmpl-…"
  int64_t created = 0;  // Unix seconds
  std::string model;
  bool stream = false;
  bool include_usage = false;
  bool logprobs = false;
  bool reasoning = false;  // chat: messages carry reasoning_content
  bool keep_text = false;  // streaming too keeps each choice's text, for texts() (the audit log)
};

struct UsageTotals {
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t reasoning_tokens = 0;
  double flops = 0;          // ponder extension: forward FLOPs of every choice (the engine's count)
  double nominal_flops = 0;  // ponder extension: Σ choices' worker::Usage::nominal_flops

  nlohmann::ordered_json to_json() const;
};

class ResponseAssembler {
 public:
  // Prompt p's choices have indexes p·n … p·n + n − 1. `prompt_tokens[p]` is its length.
  ResponseAssembler(ResponseMeta meta, const text::Tokenizer& tokenizer,
                    const std::vector<ChoiceOptions>& per_prompt, int32_t n,
                    std::vector<int64_t> prompt_tokens);

  // Streaming: the events to send first (each chat choice's assistant role).
  std::string stream_start() const;
  // One output of prompt `prompt`. Streaming: returns the events it produces (possibly none);
  // otherwise collects it and returns "".
  std::string push(int32_t prompt, const worker::EngineOutput& output);
  bool finished() const { return finished_choices_ == static_cast<int64_t>(choices_.size()); }
  // Every choice of `prompt` has finished or matched a stop string, so whatever the engine
  // still generates for it is discarded (the caller may cancel it).
  bool prompt_settled(int32_t prompt) const;
  // Streaming, once finished(): the usage chunk when include_usage, then `data: [DONE]`.
  std::string stream_end() const;
  // Whole response, once finished(): the JSON object, or the error of the first failed choice
  // (finish_reason "error" → 500, "cancelled" → 503).
  ApiResult<nlohmann::ordered_json> response() const;

  const UsageTotals& usage() const { return usage_; }
  // Each choice's text so far: [{"reasoning": …, "content": …}] (streaming: with keep_text).
  nlohmann::ordered_json texts() const;
  const std::optional<ApiError>& error() const { return error_; }

 private:
  struct Choice {
    ChoiceStream stream;
    ChoiceDelta all;  // what was released so far (whole responses; tool calls also when streaming)
    int64_t cached_tokens = 0;
    worker::Usage usage;  // the finished delta's: `choices[i].usage` of whole responses
  };

  nlohmann::ordered_json chunk(nlohmann::ordered_json choices) const;
  // A stream chunk's choice: the delta's text and logprobs when `text`, `tool_calls` (null: none)
  // and the finish when `finish`.
  nlohmann::ordered_json chunk_choice(int64_t index, const ChoiceDelta& delta, bool text,
                                      nlohmann::ordered_json tool_calls, bool finish) const;
  // The stream events of one delta: its text, then each new tool call as OpenAI streams one
  // (index, id, type and name first, then the arguments), the finish on the last.
  std::string stream_events(int64_t index, const ChoiceDelta& delta, size_t first_call) const;
  // "call_…": unique within the response, and across responses as the response id is.
  std::string tool_call_id(int64_t choice, size_t call) const;
  nlohmann::ordered_json logprobs_json(const std::vector<TokenLogprobEntry>& entries) const;

  ResponseMeta meta_;
  int32_t n_;
  std::vector<Choice> choices_;
  int64_t finished_choices_ = 0;
  UsageTotals usage_;
  std::optional<ApiError> error_;
};

// "data: <json>\n\n"
std::string sse_event(const nlohmann::ordered_json& data);
// Compact JSON that never throws on invalid UTF-8 (replaced by U+FFFD).
std::string dump_json(const nlohmann::ordered_json& j);

}  // namespace ponder::coordinator::api
