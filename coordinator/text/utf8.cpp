// UTF-8 helpers.
#include "coordinator/text/utf8.h"

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

}  // namespace ponder::text
