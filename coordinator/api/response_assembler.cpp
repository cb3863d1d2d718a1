// OpenAI response objects and stream chunks from per-choice deltas.
#include "coordinator/api/response_assembler.h"

#include <cmath>

#include "common/strings.h"

namespace ponder::coordinator::api {

using Json = nlohmann::ordered_json;

namespace {

Json logprob_value(float lp) {
  return std::isfinite(lp) ? Json(lp) : Json(nullptr);  // engine-inserted tokens have none
}

Json bytes_of(const std::string& s) {
  Json b = Json::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

}  // namespace

std::string dump_json(const Json& j) {
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string sse_event(const Json& data) { return "data: " + dump_json(data) + "\n\n"; }

Json UsageTotals::to_json() const {
  Json u = Json::object();
  u["prompt_tokens"] = prompt_tokens;
  u["completion_tokens"] = completion_tokens;
  u["total_tokens"] = prompt_tokens + completion_tokens;
  u["prompt_tokens_details"] = {{"cached_tokens", cached_tokens}};
  u["completion_tokens_details"] = {{"reasoning_tokens", reasoning_tokens}};
  u["flops"] = flops;
  u["nominal_flops"] = nominal_flops;
  return u;
}

ResponseAssembler::ResponseAssembler(ResponseMeta meta, const text::Tokenizer& tokenizer,
                                     const std::vector<ChoiceOptions>& per_prompt, int32_t n,
                                     std::vector<int64_t> prompt_tokens)
    : meta_(std::move(meta)), n_(n) {
  choices_.reserve(per_prompt.size() * n);
  for (const ChoiceOptions& o : per_prompt)
    for (int32_t i = 0; i < n; ++i)
      choices_.push_back(Choice{.stream = ChoiceStream(tokenizer, o)});
  for (int64_t p : prompt_tokens) usage_.prompt_tokens += p;
}

Json ResponseAssembler::chunk(Json choices) const {
  Json c = Json::object();
  c["id"] = meta_.id;
  c["object"] =
      meta_.endpoint == Endpoint::kChatCompletions ? "chat.completion.chunk" : "text_completion";
  c["created"] = meta_.created;
  c["model"] = meta_.model;
  c["choices"] = std::move(choices);
  if (meta_.include_usage) c["usage"] = nullptr;
  return c;
}

Json ResponseAssembler::logprobs_json(const std::vector<TokenLogprobEntry>& entries) const {
  if (meta_.endpoint == Endpoint::kChatCompletions) {
    Json content = Json::array();
    for (const TokenLogprobEntry& e : entries) {
      Json top = Json::array();
      for (const TokenAlternative& a : e.top)
        top.push_back({{"token", a.text},
                       {"logprob", logprob_value(a.logprob)},
                       {"bytes", bytes_of(a.bytes)}});
      content.push_back({{"token", e.text},
                         {"logprob", logprob_value(e.logprob)},
                         {"bytes", bytes_of(e.bytes)},
                         {"top_logprobs", std::move(top)}});
    }
    return {{"content", std::move(content)}, {"refusal", nullptr}};
  }
  Json text_offset = Json::array(), token_logprobs = Json::array(), tokens = Json::array(),
       top = Json::array();
  for (const TokenLogprobEntry& e : entries) {
    text_offset.push_back(e.text_offset);
    token_logprobs.push_back(logprob_value(e.logprob));
    tokens.push_back(e.text);
    Json alts = Json::object();
    for (const TokenAlternative& a : e.top)
      if (!alts.contains(a.text)) alts[a.text] = logprob_value(a.logprob);
    top.push_back(std::move(alts));
  }
  return {{"text_offset", std::move(text_offset)},
          {"token_logprobs", std::move(token_logprobs)},
          {"tokens", std::move(tokens)},
          {"top_logprobs", std::move(top)}};
}

Json ResponseAssembler::chunk_choice(int64_t index, const ChoiceDelta& d, bool text,
                                     Json tool_calls, bool finish) const {
  Json c = Json::object();
  c["index"] = index;
  if (meta_.endpoint == Endpoint::kChatCompletions) {
    Json delta = Json::object();
    if (text && !d.reasoning.empty()) delta["reasoning_content"] = d.reasoning;
    if (text && !d.content.empty()) delta["content"] = d.content;
    if (!tool_calls.is_null()) delta["tool_calls"] = std::move(tool_calls);
    c["delta"] = std::move(delta);
  } else {
    c["text"] = d.content;
  }
  c["logprobs"] =
      text && meta_.logprobs && !d.logprobs.empty() ? logprobs_json(d.logprobs) : Json(nullptr);
  c["finish_reason"] = finish ? Json(d.finish_reason) : Json(nullptr);
  if (finish) c["stop_reason"] = d.stop_reason.empty() ? Json(nullptr) : Json(d.stop_reason);
  return c;
}

std::string ResponseAssembler::tool_call_id(int64_t choice, size_t call) const {
  // The response id's random hex, so ids differ across responses (a conversation's history
  // holds the calls of many), then the choice and the call.
  const size_t dash = meta_.id.rfind('-');
  const std::string random = dash == std::string::npos ? meta_.id : meta_.id.substr(dash + 1);
  return strformat("call_%s_%lld_%zu", random.substr(0, 16).c_str(), (long long)choice, call);
}

std::string ResponseAssembler::stream_events(int64_t index, const ChoiceDelta& d,
                                             size_t first_call) const {
  std::string out;
  const bool calls = !d.tool_calls.empty();
  const bool text = !d.reasoning.empty() || !d.content.empty() || !d.logprobs.empty();
  if (text || (d.finished && !calls))
    out += sse_event(
        chunk(Json::array({chunk_choice(index, d, true, nullptr, d.finished && !calls)})));
  for (size_t k = 0; k < d.tool_calls.size(); ++k) {
    const text::ToolCall& call = d.tool_calls[k];
    const size_t i = first_call + k;
    Json head = {{"index", i},
                 {"id", tool_call_id(index, i)},
                 {"type", "function"},
                 {"function", {{"name", call.name}, {"arguments", ""}}}};
    out +=
        sse_event(chunk(Json::array({chunk_choice(index, d, false, Json::array({head}), false)})));
    Json args = {{"index", i}, {"function", {{"arguments", call.arguments}}}};
    const bool last = k + 1 == d.tool_calls.size();
    out += sse_event(chunk(
        Json::array({chunk_choice(index, d, false, Json::array({args}), last && d.finished)})));
  }
  return out;
}

std::string ResponseAssembler::stream_start() const {
  if (meta_.endpoint != Endpoint::kChatCompletions) return {};
  std::string out;
  for (size_t i = 0; i < choices_.size(); ++i) {
    Json c = Json::object();
    c["index"] = i;
    c["delta"] = {{"role", "assistant"}, {"content", ""}};
    c["logprobs"] = nullptr;
    c["finish_reason"] = nullptr;
    out += sse_event(chunk(Json::array({std::move(c)})));
  }
  return out;
}

std::string ResponseAssembler::push(int32_t prompt, const worker::EngineOutput& output) {
  const int64_t index = static_cast<int64_t>(prompt) * n_ + output.index;
  if (index < 0 || index >= static_cast<int64_t>(choices_.size())) return {};
  Choice& choice = choices_[index];
  if (choice.stream.finished()) return {};
  ChoiceDelta d = choice.stream.push(output);
  std::string events;
  if (d.finished) {
    ++finished_choices_;
    usage_.completion_tokens += d.usage.completion_tokens;
    usage_.reasoning_tokens += d.usage.thinking_tokens;
    usage_.flops += d.usage.flops;
    usage_.nominal_flops += d.usage.nominal_flops;
    choice.usage = d.usage;
    // The n samples of a prompt share it, and it counts once: what the first sample found in
    // the prefix cache (the others report the prompt blocks they share with it as cached).
    choice.cached_tokens = d.usage.cached_prompt_tokens;
    int64_t cached = 0;
    for (size_t p = 0; p < choices_.size(); p += n_) cached += choices_[p].cached_tokens;
    usage_.cached_tokens = cached;
    if ((d.finish_reason == "error" || d.finish_reason == "cancelled") && !error_) {
      error_ = d.finish_reason == "error"
                   ? ApiError{.status = 500,
                              .message = "generation failed: " +
                                         (d.error.empty() ? "engine error" : d.error),
                              .type = "server_error",
                              .code = "internal_error"}
                   : ApiError{.status = 503,
                              .message = d.error.empty()
                                             ? "the request was cancelled before it finished "
                                               "(the server is shutting down)"
                                             : "the request could not run: " + d.error,
                              .type = "server_error",
                              .code = "service_unavailable"};
      if (meta_.stream) events += sse_event(error_->to_json());
    }
  }
  const size_t first_call = choice.all.tool_calls.size();
  for (const text::ToolCall& call : d.tool_calls) choice.all.tool_calls.push_back(call);
  if (meta_.stream && meta_.keep_text) {
    choice.all.reasoning += d.reasoning;
    choice.all.content += d.content;
  }
  if (meta_.stream) {
    const bool failed =
        d.finished && (d.finish_reason == "error" || d.finish_reason == "cancelled");
    if (!failed) events += stream_events(index, d, first_call);
    return events;
  }
  choice.all.reasoning += d.reasoning;
  choice.all.content += d.content;
  for (TokenLogprobEntry& e : d.logprobs) choice.all.logprobs.push_back(std::move(e));
  if (d.finished) {
    choice.all.finished = true;
    choice.all.finish_reason = d.finish_reason;
    choice.all.stop_reason = d.stop_reason;
  }
  return {};
}

Json ResponseAssembler::texts() const {
  Json out = Json::array();
  for (const Choice& c : choices_)
    out.push_back({{"reasoning", c.all.reasoning}, {"content", c.all.content}});
  return out;
}

bool ResponseAssembler::prompt_settled(int32_t prompt) const {
  const size_t first = static_cast<size_t>(prompt) * n_;
  if (prompt < 0 || first + n_ > choices_.size()) return false;
  for (size_t i = first; i < first + n_; ++i)
    if (!choices_[i].stream.finished() && !choices_[i].stream.stopped()) return false;
  return true;
}

std::string ResponseAssembler::stream_end() const {
  std::string out;
  if (meta_.include_usage) {
    Json c = chunk(Json::array());
    c["usage"] = usage_.to_json();
    out += sse_event(c);
  }
  out += "data: [DONE]\n\n";
  return out;
}

ApiResult<Json> ResponseAssembler::response() const {
  if (error_) return tl::unexpected(*error_);
  const bool chat = meta_.endpoint == Endpoint::kChatCompletions;
  Json choices = Json::array();
  for (size_t i = 0; i < choices_.size(); ++i) {
    const ChoiceDelta& d = choices_[i].all;
    Json c = Json::object();
    c["index"] = i;
    if (chat) {
      Json message = Json::object();
      message["role"] = "assistant";
      // With tool calls and nothing else to say, content is null, as OpenAI sends it.
      message["content"] =
          d.content.empty() && !d.tool_calls.empty() ? Json(nullptr) : Json(d.content);
      if (meta_.reasoning) message["reasoning_content"] = d.reasoning;
      if (!d.tool_calls.empty()) {
        Json calls = Json::array();
        for (size_t k = 0; k < d.tool_calls.size(); ++k)
          calls.push_back(
              {{"id", tool_call_id(static_cast<int64_t>(i), k)},
               {"type", "function"},
               {"function",
                {{"name", d.tool_calls[k].name}, {"arguments", d.tool_calls[k].arguments}}}});
        message["tool_calls"] = std::move(calls);
      }
      c["message"] = std::move(message);
    } else {
      c["text"] = d.content;
    }
    c["logprobs"] = meta_.logprobs ? logprobs_json(d.logprobs) : Json(nullptr);
    c["finish_reason"] = d.finish_reason;
    c["stop_reason"] = d.stop_reason.empty() ? Json(nullptr) : Json(d.stop_reason);
    // ponder extension: this choice's own token counts and nominal FLOPs (the request's `usage`
    // sums them), so that a client of n samples can tell each sample's length, thinking and
    // standalone cost apart. Executed FLOPs stay request-level: a choice's share of the prefill
    // depends on what the prefix cache held, and equal requests must give equal choices.
    const worker::Usage& u = choices_[i].usage;
    c["usage"] = {{"completion_tokens", u.completion_tokens},
                  {"reasoning_tokens", u.thinking_tokens},
                  {"nominal_flops", u.nominal_flops}};
    choices.push_back(std::move(c));
  }
  Json r = Json::object();
  r["id"] = meta_.id;
  r["object"] = chat ? "chat.completion" : "text_completion";
  r["created"] = meta_.created;
  r["model"] = meta_.model;
  r["choices"] = std::move(choices);
  r["usage"] = usage_.to_json();
  return r;
}

}  // namespace ponder::coordinator::api
