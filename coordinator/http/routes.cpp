// Route table, authentication and the non-generating endpoints.
#include "coordinator/http/routes.h"

#include <algorithm>

#include "common/strings.h"
#include "coordinator/api/completion_request.h"
#include "coordinator/api/prompt.h"
#include "coordinator/api/response_assembler.h"

namespace ponder::coordinator::http {

using Json = nlohmann::ordered_json;

namespace {
constexpr std::string_view kModelPrefix = "/v1/models/";

std::string_view path_of(std::string_view target) {
  size_t q = target.find('?');
  return q == std::string_view::npos ? target : target.substr(0, q);
}

Json model_card(const ServerContext& ctx) {
  Json m = Json::object();
  m["id"] = ctx.options.served_model_name;
  m["object"] = "model";
  m["created"] = ctx.created;
  m["owned_by"] = "ponder";
  m["root"] = ctx.model.model_dir;
  m["max_model_len"] = ctx.generation_limits.context_length;
  // ponder extension: what unset sampling fields get (generation_config.json's, when used), and
  // the server's settings.
  Json ponder = Json::object();
  ponder["generation_defaults"] = ctx.options.generation_config
                                      ? Json(ctx.model.generation_defaults.to_json())
                                      : Json::object();
  if (!ctx.options.server_config.is_null()) ponder["server"] = ctx.options.server_config;
  m["ponder"] = std::move(ponder);
  return m;
}
}  // namespace

Route route_of(std::string_view target) {
  std::string_view path = path_of(target);
  if (path == "/v1/chat/completions") return Route::kChatCompletions;
  if (path == "/v1/completions") return Route::kCompletions;
  if (path == "/v1/models") return Route::kModels;
  if (path.size() > kModelPrefix.size() && path.substr(0, kModelPrefix.size()) == kModelPrefix)
    return Route::kModel;
  if (path == "/tokenize") return Route::kTokenize;
  if (path == "/detokenize") return Route::kDetokenize;
  if (path == "/health") return Route::kHealth;
  if (path == "/metrics") return Route::kMetrics;
  return Route::kUnknown;
}

const char* endpoint_label(Route route) {
  switch (route) {
    case Route::kChatCompletions:
      return "/v1/chat/completions";
    case Route::kCompletions:
      return "/v1/completions";
    case Route::kModels:
      return "/v1/models";
    case Route::kModel:
      return "/v1/models/{model}";
    case Route::kTokenize:
      return "/tokenize";
    case Route::kDetokenize:
      return "/detokenize";
    case Route::kHealth:
      return "/health";
    case Route::kMetrics:
      return "/metrics";
    case Route::kUnknown:
      break;
  }
  return "other";
}

const char* route_method(Route route) {
  return route == Route::kChatCompletions || route == Route::kCompletions ||
                 route == Route::kTokenize || route == Route::kDetokenize
             ? "POST"
             : "GET";
}

bool needs_auth(Route route) { return route != Route::kHealth && route != Route::kMetrics; }

PlainResponse json_response(int status, const Json& body) {
  return {.status = status, .body = api::dump_json(body)};
}

PlainResponse error_response(const api::ApiError& e, int retry_after_s) {
  PlainResponse r = json_response(e.status, e.to_json());
  if (e.status == 503) r.headers.emplace_back("Retry-After", std::to_string(retry_after_s));
  return r;
}

PlainResponse models_response(const ServerContext& ctx) {
  Json list = Json::object();
  list["object"] = "list";
  list["data"] = Json::array({model_card(ctx)});
  return json_response(200, list);
}

PlainResponse model_response(const ServerContext& ctx, std::string_view target) {
  std::string_view id = path_of(target).substr(kModelPrefix.size());
  if (id != ctx.options.served_model_name)
    return error_response(
        {.status = 404,
         .message = strformat("The model '%.*s' does not exist", (int)id.size(), id.data()),
         .param = "model",
         .code = "model_not_found"},
        ctx.options.retry_after_s);
  return json_response(200, model_card(ctx));
}

Json health_body(ServerContext& ctx, bool* healthy) {
  DispatcherStats st = ctx.dispatcher.stats();
  Json body = Json::object();
  const bool draining = ctx.draining.load();
  const bool ok = st.healthy_replicas > 0 && !draining;
  *healthy = ok;
  body["status"] = ok ? "ok" : "unavailable";
  if (!ok)
    body["reason"] = draining ? std::string("the server is shutting down")
                              : strformat(
                                    "no healthy replica (%lld registered, none answered a "
                                    "heartbeat with every rank recently)",
                                    (long long)st.replicas);
  body["replicas"] = st.replicas;
  body["healthy_replicas"] = st.healthy_replicas;
  body["requests_in_flight"] = st.requests_in_flight;
  if (!st.replica_slots.empty()) {
    // A supervised deployment: each replica's state ("healthy", "restarting", "failed").
    body["replica_restarts"] = st.replica_restarts;
    Json slots = Json::array();
    for (const ReplicaSlot& slot : st.replica_slots)
      slots.push_back({{"index", slot.index},
                       {"id", slot.id},
                       {"state", slot.state},
                       {"restarts", slot.restarts}});
    body["replica_states"] = std::move(slots);
  }
  return body;
}

PlainResponse health_response(ServerContext& ctx) {
  bool ok = false;
  Json body = health_body(ctx, &ok);
  PlainResponse r = json_response(ok ? 200 : 503, body);
  if (!ok) r.headers.emplace_back("Retry-After", std::to_string(ctx.options.retry_after_s));
  return r;
}

PlainResponse tokenize_response(const ServerContext& ctx, const std::string& body) {
  const int retry = ctx.options.retry_after_s;
  auto json = api::parse_json_body(body);
  if (!json) return error_response(json.error(), retry);
  const bool chat = json->contains("messages");
  if (!chat && !json->contains("prompt"))
    return error_response({.message = "Give 'prompt' (text) or 'messages' (a chat)",
                           .code = "missing_required_parameter"},
                          retry);
  auto request = api::parse_completion_request(
      chat ? api::Endpoint::kChatCompletions : api::Endpoint::kCompletions, *json,
      ctx.request_limits);
  if (!request) return error_response(request.error(), retry);
  if (!request->model.empty() && request->model != ctx.options.served_model_name)
    return error_response({.status = 404,
                           .message = "The model '" + request->model + "' does not exist",
                           .param = "model",
                           .code = "model_not_found"},
                          retry);
  if (!chat && request->prompts.size() != 1)
    return error_response(api::invalid_value("prompt", "/tokenize takes one prompt"), retry);
  auto prompts = api::prepare_prompts(*request, ctx.model);
  if (!prompts) return error_response(prompts.error(), retry);
  std::vector<int32_t> ids = std::move((*prompts)[0].ids);
  // Completions: add_special_tokens false leaves out the BOS the tokenizer would add.
  const auto special = json->find("add_special_tokens");
  if (!chat && special != json->end() && special->is_boolean() && !special->get<bool>()) {
    const auto& bos = ctx.model.tokenizer.bos_token();
    if (ctx.model.tokenizer.add_bos_token() && bos && !ids.empty() && ids.front() == bos->id)
      ids.erase(ids.begin());
  }
  Json out = Json::object();
  out["count"] = ids.size();
  out["max_model_len"] = ctx.generation_limits.context_length;
  out["tokens"] = ids;
  const auto strs = json->find("return_token_strs");
  if (strs != json->end() && strs->is_boolean() && strs->get<bool>()) {
    Json texts = Json::array();
    for (int32_t id : ids)
      texts.push_back(std::string(ctx.model.tokenizer.token_text(id).value_or("")));
    out["token_strs"] = std::move(texts);
  }
  return json_response(200, out);
}

PlainResponse detokenize_response(const ServerContext& ctx, const std::string& body) {
  const int retry = ctx.options.retry_after_s;
  auto json = api::parse_json_body(body);
  if (!json) return error_response(json.error(), retry);
  const auto tokens = json->find("tokens");
  if (tokens == json->end() || !tokens->is_array())
    return error_response(api::invalid_type("tokens", "'tokens' must be an array of token ids"),
                          retry);
  std::vector<int32_t> ids;
  for (const Json& t : *tokens) {
    if (!t.is_number_integer() || t.get<int64_t>() < 0 ||
        t.get<int64_t>() >= ctx.request_limits.vocab_size)
      return error_response(
          api::invalid_value("tokens", strformat("every token id must be an integer in [0, %lld)",
                                                 (long long)ctx.request_limits.vocab_size)),
          retry);
    ids.push_back(static_cast<int32_t>(t.get<int64_t>()));
  }
  return json_response(200, Json{{"prompt", ctx.model.tokenizer.decode(ids)}});
}

PlainResponse metrics_response(ServerContext& ctx) {
  int64_t in_progress = 0;
  {
    std::lock_guard<std::mutex> lock(ctx.mu);
    in_progress = static_cast<int64_t>(ctx.calls.size());
  }
  return {
      .status = 200,
      .content_type = "text/plain; version=0.0.4; charset=utf-8",
      .body = ctx.metrics.render(ctx.dispatcher.stats(), in_progress, ServerMetrics::Clock::now())};
}

}  // namespace ponder::coordinator::http
