// FieldReader: typed reads of a JSON request body's fields with OpenAI-style errors that name the
// field. Reads after the first error do nothing, so a parser reads every field and checks once.
// A field that is absent or null counts as not given (clients send `"temperature": null`).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "coordinator/api/api_error.h"

namespace ponder::coordinator::api {

class FieldReader {
 public:
  // `object` must outlive the reader.
  explicit FieldReader(const nlohmann::ordered_json& object) : object_(object) {}

  // The field when present and not null, else nullptr.
  const nlohmann::ordered_json* get(std::string_view key) const;

  // Each reads `key` into *out when it is given with the right type and returns true; returns
  // false (leaving *out alone) when absent, null or after an error. Wrong types are errors.
  bool number(std::string_view key, double* out);  // integers are numbers too
  bool number(std::string_view key, float* out);
  bool integer(std::string_view key, int64_t* out);
  bool integer(std::string_view key, int32_t* out);
  bool boolean(std::string_view key, bool* out);
  bool string(std::string_view key, std::string* out);

  // Range and consistency checks: when `ok` is false, records invalid_value(key, message).
  void check(bool ok, std::string_view key, std::string message);
  void fail(ApiError e);

  bool ok() const { return !error_; }
  const std::optional<ApiError>& error() const { return error_; }

 private:
  const nlohmann::ordered_json* typed(std::string_view key,
                                      bool type_ok_fn(const nlohmann::ordered_json&),
                                      const char* expected);

  const nlohmann::ordered_json& object_;
  std::optional<ApiError> error_;
};

// "a string", "an array", ... for messages about wrong types.
std::string json_type_phrase(const nlohmann::ordered_json& value);

}  // namespace ponder::coordinator::api
