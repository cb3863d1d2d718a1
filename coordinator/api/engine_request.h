// From a parsed request and its prompts to the engine's requests: the context-length check,
// max_tokens defaults, sampling, stop conditions and thinking budgets. One engine request per
// prompt; each carries the request's n.
#pragma once

#include <cstdint>
#include <vector>

#include "coordinator/api/api_error.h"
#include "coordinator/api/completion_request.h"
#include "coordinator/api/prompt.h"
#include "coordinator/text/tool_call_parser.h"
#include "worker/engine/request.h"

namespace ponder::coordinator::api {

struct GenerationLimits {
  int64_t context_length = 0;  // prompt + completion tokens the model takes
  // Chat requests without max_tokens get the rest of the context, capped by this when > 0.
  int64_t default_max_tokens = 0;
  // Prompt + completion tokens one sequence can hold in a replica's KV cache; when > 0 it bounds
  // requests as the context does (defaults shrink to fit). 0: not known.
  int64_t kv_cache_tokens = 0;
  bool has_thinking_delimiter = false;  // thinking budgets need the model's end-of-thinking token
};

// Completions without max_tokens get this many tokens (OpenAI's default for the legacy API).
inline constexpr int64_t kDefaultCompletionMaxTokens = 16;

// `seed` is used when the request gives none. Errors: a prompt that fills the context or the KV
// cache (param "messages" / "prompt"), max_tokens beyond what either leaves ("max_tokens"),
// thinking budgets on a model without a thinking delimiter.
ApiResult<std::vector<worker::EngineRequest>> make_engine_requests(
    const CompletionRequest& request, const std::vector<PreparedPrompt>& prompts,
    const GenerationLimits& limits, uint64_t seed);

// tool_choice "required" or a named function: the answer's shape — after the thinking, one call
// in the model's format to one of `functions`, its arguments an object that follows that
// function's `parameters` in `tools` (top-level properties, types, enums, required keys) — that
// the engine enforces while sampling. Error (param "tool_choice"): a model without a tool-call
// format.
ApiResult<worker::OutputConstraint> tool_call_constraint(text::ToolCallFormat format,
                                                         const std::vector<std::string>& functions,
                                                         const nlohmann::ordered_json& tools);

}  // namespace ponder::coordinator::api
