// Routes of the HTTP API: which path is which endpoint, authentication, and the answers of the
// endpoints that do not generate (/v1/models, /health, /metrics) and of errors, as plain
// responses that the session writes. Internal to coordinator/http.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "coordinator/api/api_error.h"
#include "coordinator/http/server_context.h"

namespace ponder::coordinator::http {

struct PlainResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// kUnknown stays last: the tests walk the routes up to it.
enum class Route {
  kChatCompletions,
  kCompletions,
  kModels,
  kModel,
  kTokenize,
  kDetokenize,
  kHealth,
  kMetrics,
  kUnknown
};

// The route of a request target (the query string is ignored).
Route route_of(std::string_view target);
// The endpoint label of a route in metrics ("other" for unknown paths).
const char* endpoint_label(Route route);
// The one method a route answers.
const char* route_method(Route route);
// Every route but /health and /metrics (unknown paths too) needs a key when the server has keys.
bool needs_auth(Route route);

PlainResponse json_response(int status, const nlohmann::ordered_json& body);
// 503 answers carry Retry-After.
PlainResponse error_response(const api::ApiError& error, int retry_after_s);
PlainResponse models_response(const ServerContext& ctx);
PlainResponse model_response(const ServerContext& ctx, std::string_view target);
// /health's body; `healthy`: a replica is healthy and the server is not draining.
nlohmann::ordered_json health_body(ServerContext& ctx, bool* healthy);
PlainResponse health_response(ServerContext& ctx);
// POST /tokenize (a prompt, or messages through the chat template) and POST /detokenize (ids to
// text), in vLLM's shape.
PlainResponse tokenize_response(const ServerContext& ctx, const std::string& body);
PlainResponse detokenize_response(const ServerContext& ctx, const std::string& body);
PlainResponse metrics_response(ServerContext& ctx);

}  // namespace ponder::coordinator::http
