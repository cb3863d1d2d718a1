// CompletionRequest: the body of POST /v1/chat/completions or /v1/completions, parsed and
// validated into typed fields (OpenAI's parameters, vLLM's extras, ponder's thinking budgets).
// Errors name the field, as OpenAI's do. Pure: no model, no sockets.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "coordinator/api/api_error.h"
#include "worker/sampler.h"

namespace ponder::coordinator::api {

enum class Endpoint { kChatCompletions, kCompletions };

// Bounds (and defaults) that come from the deployment rather than the request.
struct RequestLimits {
  int32_t max_n = 64;        // largest n (choices per prompt)
  int64_t vocab_size = 0;    // token ids must be below it; 0: not checked here
  int32_t max_prompts = 64;  // /v1/completions: prompts in one request
  int32_t max_stop = 16;     // stop strings
  // What a request's unset sampling fields get: the model's generation_config.json over
  // ponder's own (ServerOptions::generation_config).
  worker::SamplingParams sampling_defaults;
};

// One /v1/completions prompt: text, or token ids used as given.
using PromptInput = std::variant<std::string, std::vector<int32_t>>;

struct CompletionRequest {
  Endpoint endpoint = Endpoint::kChatCompletions;
  std::string model;  // empty: not given (the served model)

  // /v1/chat/completions: messages ready for the chat template (content parts joined, the
  // "developer" role as "system"), tools (null when none) and extra template variables.
  nlohmann::ordered_json messages;
  nlohmann::ordered_json tools;
  // The tools' function names, in order; and what the model may do with them. kAuto: calls are
  // parsed out of the answer; kNone: no tools reach the template and nothing is parsed;
  // kRequired / kFunction: the answer is one call (to tool_choice_function), enforced while
  // sampling.
  std::vector<std::string> tool_names;
  enum class ToolChoice { kAuto, kNone, kRequired, kFunction } tool_choice = ToolChoice::kAuto;
  std::string tool_choice_function;  // kFunction
  bool parallel_tool_calls = true;   // false: only the first call of an answer is kept

  bool forces_tool_call() const {
    return tool_choice == ToolChoice::kRequired || tool_choice == ToolChoice::kFunction;
  }
  // The functions a call may name.
  std::vector<std::string> callable_functions() const {
    return tool_choice == ToolChoice::kFunction ? std::vector<std::string>{tool_choice_function}
                                                : tool_names;
  }
  nlohmann::ordered_json chat_template_kwargs = nlohmann::ordered_json::object();
  bool add_generation_prompt = true;

  // /v1/completions: one request to the engine per prompt.
  std::vector<PromptInput> prompts;

  std::optional<int64_t> max_tokens;  // max_completion_tokens, else max_tokens
  int32_t n = 1;
  worker::SamplingParams sampling;  // seed set only when has_seed
  bool has_seed = false;
  std::vector<std::string> stop;
  std::vector<int32_t> stop_token_ids;
  int64_t min_tokens = 0;
  bool ignore_eos = false;
  bool include_stop_str_in_output = false;
  bool skip_special_tokens = true;
  bool logprobs = false;     // chat: `logprobs`; completions: `logprobs` given (an integer)
  int32_t top_logprobs = 0;  // alternatives per token (chat: top_logprobs; completions: logprobs)
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  int64_t max_thinking_tokens = -1;
  int64_t min_thinking_tokens = 0;
  int32_t extend_thinking = 0;
  std::string user;
};

ApiResult<CompletionRequest> parse_completion_request(Endpoint endpoint,
                                                      const nlohmann::ordered_json& body,
                                                      const RequestLimits& limits);

// Objects and arrays nested in a request body, the body itself included, at most.
inline constexpr int kMaxJsonDepth = 128;

// The body text as JSON: 400 with the parser's message for malformed JSON or a non-object, or
// for nesting deeper than kMaxJsonDepth.
ApiResult<nlohmann::ordered_json> parse_json_body(std::string_view body);

}  // namespace ponder::coordinator::api
