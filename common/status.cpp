// Status formatting.
#include "common/status.h"

#include <cstdarg>

#include "common/strings.h"

namespace ponder {

std::string_view status_code_name(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "kOk";
    case StatusCode::kInvalidArgument: return "kInvalidArgument";
    case StatusCode::kNotFound: return "kNotFound";
    case StatusCode::kFailedPrecondition: return "kFailedPrecondition";
    case StatusCode::kResourceExhausted: return "kResourceExhausted";
    case StatusCode::kUnavailable: return "kUnavailable";
    case StatusCode::kTimeout: return "kTimeout";
    case StatusCode::kCancelled: return "kCancelled";
    case StatusCode::kRemote: return "kRemote";
    case StatusCode::kInternal: return "kInternal";
  }
  return "kUnknown";
}

std::string Status::to_string() const {
  if (ok()) return "kOk";
  return std::string(status_code_name(code_)) + ": " + message_;
}

Status Status::with_context(std::string_view context) const {
  if (ok()) return *this;
  return Status(code_, std::string(context) + ": " + message_);
}

tl::unexpected<Status> error(StatusCode code, const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  std::string message = vstrformat(fmt, args);
  va_end(args);
  return tl::unexpected<Status>(Status(code, std::move(message)));
}

}  // namespace ponder
