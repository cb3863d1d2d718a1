// Files that hold secrets (API keys, TLS and CURVE private keys): read only when no one but the
// owner can read them, so that a key that leaked to group or others is refused, not used.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "common/status.h"

namespace ponder {

// The whole file. Errors name the file and `what` ("api_key_file", "tls_key"): it cannot be
// opened, it is not a regular file, its mode lets group or others read it (mode & 0077; the
// message says `chmod 600`), or it is larger than `max_bytes`. The mode checked is that of the
// file read (fstat of the open descriptor).
Expected<std::string> read_private_file(const std::string& path, const char* what,
                                        int64_t max_bytes = int64_t{1} << 20);

// Writes `content` as `path` with `mode` whatever the umask: to a new file beside it, then renamed
// over it, so that a reader sees the old file or the new one, never a part.
Status write_file_atomically(const std::string& path, const std::string& content, mode_t mode);
// The same with mode 0600.
inline Status write_private_file(const std::string& path, const std::string& content) {
  return write_file_atomically(path, content, 0600);
}

}  // namespace ponder
