// ServerContext helpers.
#include "coordinator/http/server_context.h"

namespace ponder::coordinator::http {

std::string ServerContext::random_id(const char* prefix) {
  static const char kHex[] = "0123456789abcdef";
  std::string id = prefix;
  uint64_t a = random_u64(), b = random_u64();
  for (int i = 0; i < 16; ++i) id += kHex[(a >> (4 * i)) & 15];
  for (int i = 0; i < 8; ++i) id += kHex[(b >> (4 * i)) & 15];
  return id;
}

}  // namespace ponder::coordinator::http
