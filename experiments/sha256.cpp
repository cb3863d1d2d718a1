// OpenSSL's SHA-256 (libssl-dev), not one of our own.
#include "experiments/sha256.h"

#include <openssl/evp.h>

#include "common/check.h"
#include "common/strings.h"

namespace ponder::experiments {

std::string sha256_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  const int ok = EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr);
  PONDER_CHECK(ok == 1 && size == 32, "EVP_Digest(SHA-256) failed");
  std::string hex;
  hex.reserve(64);
  for (unsigned int i = 0; i < size; ++i) hex += strformat("%02x", digest[i]);
  return hex;
}

}  // namespace ponder::experiments
