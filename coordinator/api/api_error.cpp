// OpenAI-shaped errors and the mapping from ponder's status codes to HTTP statuses.
#include "coordinator/api/api_error.h"

namespace ponder::coordinator::api {

namespace {
nlohmann::ordered_json null_if_empty(const std::string& s) {
  return s.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(s);
}
}  // namespace

nlohmann::ordered_json ApiError::to_json() const {
  nlohmann::ordered_json e = nlohmann::ordered_json::object();
  e["message"] = message;
  e["type"] = type;
  e["param"] = null_if_empty(param);
  e["code"] = null_if_empty(code);
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  out["error"] = std::move(e);
  return out;
}

ApiError invalid_value(std::string param, std::string message) {
  return {.status = 400,
          .message = std::move(message),
          .param = std::move(param),
          .code = "invalid_value"};
}

ApiError invalid_type(std::string param, std::string message) {
  return {.status = 400,
          .message = std::move(message),
          .param = std::move(param),
          .code = "invalid_type"};
}

ApiError from_status(const Status& status, std::string param) {
  ApiError e{.message = status.message(), .param = std::move(param)};
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
      e.status = 400;
      e.code = "invalid_value";
      break;
    case StatusCode::kNotFound:
      e.status = 404;
      e.code = "not_found";
      break;
    case StatusCode::kUnavailable:
    case StatusCode::kResourceExhausted:
    case StatusCode::kCancelled:
      e.status = 503;
      e.code = "service_unavailable";
      break;
    case StatusCode::kTimeout:
      e.status = 504;
      e.code = "timeout";
      break;
    default:
      e.status = 500;
      e.code = "internal_error";
      break;
  }
  if (is_server_error(e.status)) e.type = "server_error";
  return e;
}

}  // namespace ponder::coordinator::api
