// GPT-2 byte <-> character mapping.
#include "coordinator/text/bpe_byte_level.h"

#include <array>

#include "coordinator/text/utf8.h"

namespace ponder::text {
namespace {

// Printable Latin-1 bytes stand for themselves; the other 68 bytes take U+0100.. in byte order.
struct Alphabet {
  std::array<char32_t, 256> to_char{};
  std::array<int16_t, 324> to_byte{};  // indexed by code point < 0x144
  Alphabet() {
    to_byte.fill(-1);
    char32_t next = 0x100;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      to_char[b] = printable ? char32_t(b) : next++;
      to_byte[to_char[b]] = static_cast<int16_t>(b);
    }
  }
};

const Alphabet& alphabet() {
  static const Alphabet table;
  return table;
}

}  // namespace

char32_t byte_level_char(uint8_t byte) { return alphabet().to_char[byte]; }

int byte_level_byte(char32_t cp) {
  return cp < alphabet().to_byte.size() ? alphabet().to_byte[cp] : -1;
}

std::string bytes_to_byte_level(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) utf8_append(&out, byte_level_char(static_cast<uint8_t>(c)));
  return out;
}

bool byte_level_to_bytes(std::string_view text, std::string* out) {
  size_t start = out->size();
  size_t i = 0;
  while (i < text.size()) {
    int b = byte_level_byte(utf8_decode(text, &i));
    if (b < 0) {
      out->resize(start);
      return false;
    }
    out->push_back(static_cast<char>(b));
  }
  return true;
}

}  // namespace ponder::text
