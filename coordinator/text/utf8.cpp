// UTF-8 helpers: incomplete tails, validation and lossy conversion.
#include "coordinator/text/utf8.h"

#include <cstdint>
#include <cstring>

namespace ponder::text {

size_t utf8_incomplete_tail(std::string_view s) {
  // Walk back over at most 3 continuation bytes to the lead byte.
  size_t n = s.size();
  for (size_t back = 1; back <= 4 && back <= n; ++back) {
    unsigned char c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte
    size_t need = utf8_sequence_length(c);
    return (need > back) ? back : 0;
  }
  return 0;
}

Utf8Step utf8_step(std::string_view s, size_t pos) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + pos;
  size_t avail = s.size() - pos;
  unsigned char c = p[0];
  if (c < 0x80) return {Utf8Step::kValid, 1};
  size_t need = utf8_sequence_length(c);
  if (need == 0) return {Utf8Step::kInvalid, 1};
  // Allowed range of the second byte (Unicode table 3-7); later bytes are 80..BF.
  unsigned char lo = 0x80, hi = 0xBF;
  if (c == 0xE0) lo = 0xA0;
  if (c == 0xED) hi = 0x9F;
  if (c == 0xF0) lo = 0x90;
  if (c == 0xF4) hi = 0x8F;
  for (size_t k = 1; k < need; ++k) {
    if (k >= avail) return {Utf8Step::kIncomplete, avail};
    unsigned char b = p[k];
    bool ok = (k == 1) ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    if (!ok) return {Utf8Step::kInvalid, k};
  }
  return {Utf8Step::kValid, need};
}

bool utf8_is_valid(std::string_view s) {
  size_t i = 0, n = s.size();
  while (i < n) {
    // Skip ASCII eight bytes at a time.
    while (i + 8 <= n) {
      uint64_t word;
      std::memcpy(&word, s.data() + i, 8);
      if (word & 0x8080808080808080ULL) break;
      i += 8;
    }
    if (i >= n) break;
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    Utf8Step step = utf8_step(s, i);
    if (step.kind != Utf8Step::kValid) return false;
    i += step.length;
  }
  return true;
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0;
  while (i < bytes.size()) {
    Utf8Step step = utf8_step(bytes, i);
    if (step.kind == Utf8Step::kValid) {
      out.append(bytes.data() + i, step.length);
    } else {
      out.append(kUtf8Replacement);
    }
    i += step.length;
  }
  return out;
}

}  // namespace ponder::text
