// ApiError: an error in the OpenAI shape ({"error": {"message", "type", "param", "code"}}) with
// the HTTP status it is sent with — what every failed request of the HTTP API turns into.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <tl/expected.hpp>

#include "common/status.h"

namespace ponder::coordinator::api {

struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // the request field at fault; empty: null
  std::string
      code;  // machine-readable reason ("invalid_type", "model_not_found", ...); empty: null

  // {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}
  nlohmann::ordered_json to_json() const;
};

template <class T>
using ApiResult = tl::expected<T, ApiError>;

// 400 invalid_request_error with code "invalid_value" / "invalid_type" naming `param`.
ApiError invalid_value(std::string param, std::string message);
ApiError invalid_type(std::string param, std::string message);

// A Status from the engine, dispatcher or text layer as an API error: kInvalidArgument → 400,
// kNotFound → 404, kUnavailable / kResourceExhausted / kCancelled → 503, kTimeout → 504,
// anything else → 500.
ApiError from_status(const Status& status, std::string param = "");

// 5xx errors have type "server_error"; the rest keep their own.
inline bool is_server_error(int status) { return status >= 500; }

}  // namespace ponder::coordinator::api
