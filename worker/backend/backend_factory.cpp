#include "worker/backend/backend_factory.h"

namespace ponder::worker {

std::string_view backend_kind_name(BackendKind kind) {
  return kind == BackendKind::kCuda ? "cuda" : "cpu";
}

Expected<BackendKind> parse_backend_kind(std::string_view name) {
  if (name == "cpu") return BackendKind::kCpu;
  if (name == "cuda") return BackendKind::kCuda;
  return error(StatusCode::kInvalidArgument, "unknown backend '%.*s' (expected cpu or cuda)",
               int(name.size()), name.data());
}

}  // namespace ponder::worker
