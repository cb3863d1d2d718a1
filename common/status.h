// Status / Expected<T>: the one error type that crosses module boundaries, with a closed code set.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include <tl/expected.hpp>

namespace ponder {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,
  kNotFound,
  kFailedPrecondition,
  kResourceExhausted,
  kUnavailable,
  kTimeout,
  kCancelled,
  kRemote,
  kInternal,
};

std::string_view status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  // Lets `return error(...)` and PONDER_RETURN_IF_ERROR work in functions that return Status.
  Status(tl::unexpected<Status> e) : Status(std::move(e.value())) {}  // NOLINT(implicit)

  static Status ok_status() { return {}; }
  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "kInvalidArgument: <message>"
  std::string to_string() const;
  // Returns a copy whose message is "<context>: <message>".
  Status with_context(std::string_view context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

template <class T>
using Expected = tl::expected<T, Status>;

// The Status of an Expected: ok, or its error.
template <class T>
Status status_of(const Expected<T>& e) {
  return e ? Status() : e.error();
}

// printf-style message; returns the unexpected value so `return error(...)` works for any
// Expected<T> and, through the implicit conversion below, for Status.
[[gnu::format(printf, 2, 3)]] tl::unexpected<Status> error(StatusCode code, const char* fmt, ...);

}  // namespace ponder
