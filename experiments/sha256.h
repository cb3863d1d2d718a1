// SHA-256 of a byte string, as lowercase hex: identities of specs, points and model configs in
// the results store (stable across machines and releases, unlike std::hash).
#pragma once

#include <string>
#include <string_view>

namespace ponder::experiments {

std::string sha256_hex(std::string_view data);

}  // namespace ponder::experiments
