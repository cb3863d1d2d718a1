// Failure path of PONDER_CHECK.
#include "common/check.h"

namespace ponder::detail {

void check_failed(const char* file, int line, const char* cond, const std::string& msg) {
  std::fprintf(stderr, "ponder: check failed at %s:%d: %s: %s\n", file, line, cond, msg.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace ponder::detail
