// Engine requests from API requests: limits (the context, the KV cache), defaults and the
// field-by-field translation.
#include "coordinator/api/engine_request.h"

#include <algorithm>

#include "common/strings.h"

namespace ponder::coordinator::api {

ApiResult<std::vector<worker::EngineRequest>> make_engine_requests(
    const CompletionRequest& r, const std::vector<PreparedPrompt>& prompts,
    const GenerationLimits& limits, uint64_t seed) {
  const bool chat = r.endpoint == Endpoint::kChatCompletions;
  const bool budgets =
      r.max_thinking_tokens >= 0 || r.min_thinking_tokens > 0 || r.extend_thinking > 0;
  if (budgets && !limits.has_thinking_delimiter) {
    const char* param = r.max_thinking_tokens >= 0  ? "max_thinking_tokens"
                        : r.min_thinking_tokens > 0 ? "min_thinking_tokens"
                                                    : "extend_thinking";
    return tl::unexpected(invalid_value(
        param,
        strformat("'%s' needs a model with a thinking delimiter (</think>); this one has none",
                  param)));
  }
  std::vector<worker::EngineRequest> out;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const PreparedPrompt& p = prompts[i];
    const int64_t prompt_tokens = static_cast<int64_t>(p.ids.size());
    const std::string prompt_param =
        chat ? "messages" : (prompts.size() > 1 ? strformat("prompt[%zu]", i) : "prompt");
    // One sequence holds prompt + completion within the context, and within a replica's KV cache
    // where the server knows that to be smaller; each bound is checked in that order.
    struct Bound {
      int64_t tokens;
      std::string text;
    };
    std::vector<Bound> bounds = {{limits.context_length,
                                  strformat("This model's maximum context length is %lld tokens",
                                            (long long)limits.context_length)}};
    if (limits.kv_cache_tokens > 0 && limits.kv_cache_tokens < limits.context_length)
      bounds.push_back({limits.kv_cache_tokens,
                        strformat("The server's KV cache holds %lld tokens per sequence",
                                  (long long)limits.kv_cache_tokens)});
    for (const Bound& b : bounds) {
      if (prompt_tokens >= b.tokens)
        return tl::unexpected(ApiError{
            .message = strformat("%s, but the %s has %lld tokens, which leaves no room for a "
                                 "completion.",
                                 b.text.c_str(), chat ? "messages' prompt" : "prompt",
                                 (long long)prompt_tokens),
            .param = prompt_param,
            .code = "context_length_exceeded"});
      if (r.max_tokens && *r.max_tokens > b.tokens - prompt_tokens)
        return tl::unexpected(ApiError{
            .message = strformat(
                "%s. However, you requested %lld tokens (%lld in the %s, %lld for the "
                "completion). Reduce the prompt or max_tokens (at most %lld with this prompt).",
                b.text.c_str(), (long long)(prompt_tokens + *r.max_tokens), (long long)prompt_tokens,
                chat ? "messages" : "prompt", (long long)*r.max_tokens,
                (long long)(b.tokens - prompt_tokens)),
            .param = "max_tokens",
            .code = "context_length_exceeded"});
    }
    // What the tightest bound leaves for the completion.
    const int64_t room = bounds.back().tokens - prompt_tokens;
    int64_t max_tokens = 0;
    if (r.max_tokens) {
      max_tokens = *r.max_tokens;
    } else if (chat) {
      max_tokens =
          limits.default_max_tokens > 0 ? std::min(room, limits.default_max_tokens) : room;
    } else {
      max_tokens = std::min(room, kDefaultCompletionMaxTokens);
    }
    if (r.min_tokens > max_tokens)
      return tl::unexpected(invalid_value(
          "min_tokens", strformat("'min_tokens' (%lld) exceeds the completion's max_tokens (%lld)",
                                  (long long)r.min_tokens, (long long)max_tokens)));
    worker::EngineRequest e{.prompt = p.ids,
                            .n = r.n,
                            .sampling = r.sampling,
                            .max_tokens = max_tokens,
                            .min_tokens = r.min_tokens,
                            .stop_token_ids = r.stop_token_ids,
                            .stop = r.stop,
                            .ignore_eos = r.ignore_eos,
                            .thinking = p.opens_reasoning,
                            .max_thinking_tokens = r.max_thinking_tokens,
                            .min_thinking_tokens = r.min_thinking_tokens,
                            .extend_thinking = r.extend_thinking};
    // Same seed for every prompt (as vLLM): equal prompts give equal samples.
    if (!r.has_seed) e.sampling.seed = seed;
    out.push_back(std::move(e));
  }
  return out;
}

ApiResult<worker::OutputConstraint> tool_call_constraint(text::ToolCallFormat format,
                                                         const std::vector<std::string>& functions,
                                                         const nlohmann::ordered_json& tools) {
  using Kind = worker::OutputConstraint::Kind;
  // Each function's parameters schema, in the order of `functions` ("{}": none given).
  std::vector<std::string> schemas;
  for (const std::string& f : functions) {
    std::string schema = "{}";
    if (tools.is_array())
      for (const auto& t : tools)
        if (t.contains("function") && t["function"].value("name", "") == f &&
            t["function"].contains("parameters"))
          schema = t["function"]["parameters"].dump(-1, ' ', false,
                                                    nlohmann::json::error_handler_t::replace);
    schemas.push_back(std::move(schema));
  }
  // Names inside JSON strings (Hermes, Llama) as JSON writes them.
  std::vector<std::string> quoted;
  for (const std::string& f : functions) {
    const std::string j =
        nlohmann::json(f).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    quoted.push_back(j.substr(1, j.size() - 2));
  }
  worker::OutputConstraint c;
  switch (format) {
    case text::ToolCallFormat::kHermes:
      c.segments = {{Kind::kSpace, {}},           {Kind::kLiteral, {"<tool_call>\n{\"name\": \""}},
                    {Kind::kOneOf, quoted},       {Kind::kLiteral, {"\", \"arguments\": "}},
                    {Kind::kJsonObject, schemas}, {Kind::kLiteral, {"}\n</tool_call>"}}};
      break;
    case text::ToolCallFormat::kLlama3Json:
      c.segments = {{Kind::kSpace, {}},           {Kind::kLiteral, {"{\"name\": \""}},
                    {Kind::kOneOf, quoted},       {Kind::kLiteral, {"\", \"parameters\": "}},
                    {Kind::kJsonObject, schemas}, {Kind::kLiteral, {"}"}}};
      break;
    case text::ToolCallFormat::kDeepSeekV3:
      c.segments = {
          {Kind::kSpace, {}},
          {Kind::kLiteral, {"<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>"}},
          {Kind::kOneOf, functions},
          {Kind::kLiteral, {"\n```json\n"}},
          {Kind::kJsonObject, schemas},
          {Kind::kLiteral, {"\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>"}}};
      break;
    case text::ToolCallFormat::kNone:
      return tl::unexpected(ApiError{
          .message = "tool_choice \"required\" or a function needs the model's tool-call format, "
                     "and this server parses none (ponder serve --tool-call-parser)",
          .param = "tool_choice",
          .code = "unsupported_value"});
  }
  return c;
}

}  // namespace ponder::coordinator::api
