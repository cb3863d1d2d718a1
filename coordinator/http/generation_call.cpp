// Completion requests through the dispatcher, answered whole or streamed.
#include "coordinator/http/generation_call.h"

#include <boost/asio/post.hpp>
#include <ctime>

#include "common/log.h"
#include "coordinator/api/prompt.h"
#include "coordinator/http/session.h"

namespace ponder::coordinator::http {

GenerationCall::GenerationCall(std::shared_ptr<Session> session, ServerContext& ctx,
                               Clock::time_point received)
    : session_(std::move(session)),
      executor_(session_->executor()),
      ctx_(ctx),
      received_(received) {}

void GenerationCall::start(std::shared_ptr<Session> session, ServerContext& ctx,
                           api::Endpoint endpoint, std::string body, Clock::time_point received) {
  auto call = std::make_shared<GenerationCall>(std::move(session), ctx, received);
  call->run(endpoint, body);
}

void GenerationCall::run(api::Endpoint endpoint, const std::string& body) {
  auto fail = [&](const api::ApiError& e) {
    answered_ = true;
    session_->respond_error(e);
  };
  auto json = api::parse_json_body(body);
  if (!json) return fail(json.error());
  auto request = api::parse_completion_request(endpoint, *json, ctx_.request_limits);
  if (!request) return fail(request.error());
  if (!request->model.empty() && request->model != ctx_.options.served_model_name)
    return fail({.status = 404,
                 .message = "The model '" + request->model +
                            "' does not exist; this server serves '" +
                            ctx_.options.served_model_name + "'",
                 .param = "model",
                 .code = "model_not_found"});
  auto prompts = api::prepare_prompts(*request, ctx_.model);
  if (!prompts) return fail(prompts.error());
  auto engine_requests =
      api::make_engine_requests(*request, *prompts, ctx_.generation_limits, ctx_.random_u64());
  if (!engine_requests) return fail(engine_requests.error());
  if (request->forces_tool_call()) {
    auto constraint =
        api::tool_call_constraint(ctx_.model.tool_call_format, request->callable_functions(),
                                  request->tools);
    if (!constraint) return fail(constraint.error());
    for (worker::EngineRequest& e : *engine_requests) e.constraint = *constraint;
  }

  const bool chat = endpoint == api::Endpoint::kChatCompletions;
  std::vector<api::ChoiceOptions> per_prompt;
  std::vector<int64_t> prompt_tokens;
  for (const api::PreparedPrompt& p : *prompts) {
    api::ChoiceOptions o{.skip_special_tokens = request->skip_special_tokens,
                         .stop = request->stop,
                         .include_stop_str_in_output = request->include_stop_str_in_output,
                         .logprobs = request->logprobs};
    if (chat && ctx_.model.reasoning) {
      o.reasoning = *ctx_.model.reasoning;
      o.reasoning->starts_in_reasoning = p.opens_reasoning;
    }
    if (chat && !request->tool_names.empty() &&
        ctx_.model.tool_call_format != text::ToolCallFormat::kNone)
      o.tool_calls = api::ChoiceOptions::ToolCalls{.format = ctx_.model.tool_call_format,
                                                   .functions = request->callable_functions(),
                                                   .parallel = request->parallel_tool_calls};
    per_prompt.push_back(std::move(o));
    prompt_tokens.push_back(static_cast<int64_t>(p.ids.size()));
  }
  stream_ = request->stream;
  n_ = request->n;
  response_id_ = ctx_.random_id(chat ? "chatcmpl-" : "cmpl-");
  if (ctx_.audit && ctx_.options.audit_log_text) {
    const char* field = chat ? "messages" : "prompt";
    if (json->contains(field)) request_text_ = (*json)[field];
  }
  first_token_at_.assign(per_prompt.size() * n_, std::nullopt);
  cancelled_early_.assign(per_prompt.size(), false);
  assembler_.emplace(api::ResponseMeta{.endpoint = endpoint,
                                       .id = response_id_,
                                       .created = static_cast<int64_t>(std::time(nullptr)),
                                       .model = ctx_.options.served_model_name,
                                       .stream = request->stream,
                                       .include_usage = request->include_usage,
                                       .logprobs = request->logprobs,
                                       .reasoning = chat && ctx_.model.reasoning.has_value(),
                                       .keep_text = ctx_.audit && ctx_.options.audit_log_text},
                     ctx_.model.tokenizer, per_prompt, request->n, prompt_tokens);
  submit(std::move(*engine_requests));
}

void GenerationCall::submit(std::vector<worker::EngineRequest> requests) {
  {
    std::lock_guard<std::mutex> lock(ctx_.mu);
    if (ctx_.draining.load()) {
      answered_ = true;
      session_->respond_error({.status = 503,
                               .message = "The server is shutting down",
                               .type = "server_error",
                               .code = "service_unavailable"});
      return;
    }
    ctx_.calls[this] = shared_from_this();
    registered_ = true;
  }
  int64_t prompt_tokens = 0;
  for (size_t p = 0; p < requests.size(); ++p) {
    const int32_t n = requests[p].n;
    prompt_tokens += static_cast<int64_t>(requests[p].prompt.size());
    std::weak_ptr<GenerationCall> weak = weak_from_this();
    auto on_output = [gate = ctx_.gate, weak,
                      prompt = static_cast<int32_t>(p)](const worker::EngineOutput& out) {
      std::lock_guard<std::mutex> lock(gate->mu);
      if (!gate->open) return;
      std::shared_ptr<GenerationCall> call = weak.lock();
      if (!call) return;
      auto executor = call->executor_;
      boost::asio::post(executor,
                        [call = std::move(call), prompt, out] { call->on_output(prompt, out); });
    };
    Expected<int64_t> id = ctx_.dispatcher.submit(std::move(requests[p]), std::move(on_output));
    if (!id) {
      // Take back what was submitted; the call stays registered until those samples end.
      cancel();
      answered_ = true;
      session_->respond_error(api::from_status(id.error()));
      if (samples_left_ == 0) unregister();
      return;
    }
    {
      std::lock_guard<std::mutex> lock(ids_mu_);
      ids_.push_back(*id);
    }
    samples_left_ += n;
  }
  ctx_.metrics.add_prompt_tokens(prompt_tokens);
  if (stream_) session_->begin_stream(assembler_->stream_start());
  std::weak_ptr<GenerationCall> weak = weak_from_this();
  session_->watch_for_disconnect([weak] {
    if (auto call = weak.lock()) call->on_client_gone();
  });
}

void GenerationCall::on_output(int32_t prompt, const worker::EngineOutput& out) {
  const Clock::time_point now = Clock::now();
  const size_t choice = static_cast<size_t>(prompt) * n_ + out.index;
  if (!out.tokens.empty() && choice < first_token_at_.size()) {
    if (!first_token_seen_) {
      first_token_seen_ = true;
      ctx_.metrics.observe_time_to_first_token(
          std::chrono::duration<double>(now - received_).count());
    }
    if (!first_token_at_[choice]) first_token_at_[choice] = now;
  }
  if (out.finished) {
    --samples_left_;
    if (choice < first_token_at_.size() && first_token_at_[choice] &&
        out.usage.completion_tokens > 1 && out.finish_reason != "cancelled")
      ctx_.metrics.observe_time_per_output_token(
          std::chrono::duration<double>(now - *first_token_at_[choice]).count() /
          static_cast<double>(out.usage.completion_tokens - 1));
  }
  if (!answered_ && !client_gone_) {
    std::string events = assembler_->push(prompt, out);
    if (stream_ && !events.empty()) session_->stream(std::move(events));
    // Stop strings the engine did not see (it matches raw token bytes): stop generating.
    if (!out.finished && assembler_->prompt_settled(prompt) && !cancelled_early_[prompt]) {
      cancelled_early_[prompt] = true;
      std::optional<int64_t> id;
      {
        std::lock_guard<std::mutex> lock(ids_mu_);
        if (static_cast<size_t>(prompt) < ids_.size()) id = ids_[prompt];
      }
      if (id) ctx_.dispatcher.cancel(*id);
    }
    if (assembler_->finished()) {
      answered_ = true;
      note_audit();
      if (stream_) {
        session_->end_stream(assembler_->stream_end());
      } else if (auto response = assembler_->response()) {
        session_->respond(json_response(200, *response));
      } else {
        session_->respond_error(response.error());
      }
      ctx_.metrics.observe_request_duration(std::chrono::duration<double>(now - received_).count());
    }
  }
  if (samples_left_ == 0) unregister();
}

void GenerationCall::on_client_gone() {
  if (answered_ || client_gone_) return;
  client_gone_ = true;
  note_audit();  // what was generated until now
  PONDER_LOG(kInfo, "http", "client closed the connection: cancelling %s", session_->endpoint());
  cancel();
}

void GenerationCall::note_audit() {
  if (!ctx_.audit || !assembler_) return;
  const api::UsageTotals& u = assembler_->usage();
  nlohmann::ordered_json f = {{"id", response_id_},
                              {"prompt_tokens", u.prompt_tokens},
                              {"completion_tokens", u.completion_tokens}};
  if (ctx_.options.audit_log_text) {
    f["request"] = request_text_;
    f["output"] = assembler_->texts();
  }
  session_->note_audit(f);
}

void GenerationCall::cancel() {
  std::vector<int64_t> ids;
  {
    std::lock_guard<std::mutex> lock(ids_mu_);
    ids = ids_;
  }
  for (int64_t id : ids) ctx_.dispatcher.cancel(id);
}

void GenerationCall::unregister() {
  if (!registered_) return;
  registered_ = false;
  std::shared_ptr<GenerationCall> keep = shared_from_this();  // the map may hold the last reference
  {
    std::lock_guard<std::mutex> lock(ctx_.mu);
    ctx_.calls.erase(this);
  }
  ctx_.calls_changed.notify_all();
}

}  // namespace ponder::coordinator::http
