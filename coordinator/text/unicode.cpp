// NFC / NFD (Unicode Standard Annex #15): full canonical decomposition, canonical ordering and
// canonical composition, with algorithmic Hangul; White_Space; general-category changes.
#include "coordinator/text/unicode.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "coordinator/text/unicode_tables.h"
#include "coordinator/text/utf8.h"

namespace ponder::text {
namespace {

namespace ut = unicode_tables;

// Hangul syllable arithmetic (Unicode §3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28;
constexpr char32_t kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

bool in_ranges(const ut::CodePointRange* ranges, size_t size, char32_t cp) {
  const ut::CodePointRange* end = ranges + size;
  const ut::CodePointRange* it = std::upper_bound(
      ranges, end, cp, [](char32_t v, const ut::CodePointRange& r) { return v < r.first; });
  return it != ranges && cp <= (it - 1)->last;
}

// One bit per BMP code point for the "may change" sets, built once from the ranges.
class BmpBitmap {
 public:
  BmpBitmap(const ut::CodePointRange* ranges, size_t size) {
    bits_.fill(0);
    for (size_t i = 0; i < size; ++i) {
      for (char32_t cp = ranges[i].first; cp <= ranges[i].last && cp < 0x10000; ++cp) {
        bits_[cp >> 6] |= uint64_t{1} << (cp & 63);
      }
    }
  }
  bool test(char32_t cp) const { return (bits_[cp >> 6] >> (cp & 63)) & 1; }

 private:
  std::array<uint64_t, 0x10000 / 64> bits_;
};

// True if a character of `text` is in the set given as a BMP bitmap and ranges: the characters
// that may change under a normalization, or whose category changed. Lead bytes below
// `fast_limit_lead` start characters outside the set: everything below U+0300 is stable under
// both NFC and NFD... except Latin-1 and Latin Extended letters for NFD, so NFD passes a lower one.
bool may_change(std::string_view text, const BmpBitmap& bmp, const ut::CodePointRange* ranges,
                size_t size, unsigned char fast_limit_lead) {
  size_t i = 0, n = text.size();
  while (i < n) {
    if (i + 8 <= n) {  // eight ASCII bytes at a time
      uint64_t word;
      std::memcpy(&word, text.data() + i, 8);
      if ((word & 0x8080808080808080u) == 0) {
        i += 8;
        continue;
      }
    }
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < fast_limit_lead) {  // ASCII, continuation bytes, or a lead byte of a stable block
      ++i;
      continue;
    }
    char32_t cp = utf8_decode(text, &i);
    if (cp < 0x10000 ? bmp.test(cp) : in_ranges(ranges, size, cp)) return true;
  }
  return false;
}

const BmpBitmap& nfc_bitmap() {
  static const BmpBitmap bitmap(ut::kNfcUnstable, ut::kNfcUnstableSize);
  return bitmap;
}

const BmpBitmap& nfd_bitmap() {
  static const BmpBitmap bitmap(ut::kNfdUnstable, ut::kNfdUnstableSize);
  return bitmap;
}

// The UTF-8 lead byte of `cp`: lead bytes grow with the code point.
unsigned char utf8_lead_byte(char32_t cp) {
  if (cp < 0x80) return static_cast<unsigned char>(cp);
  if (cp < 0x800) return static_cast<unsigned char>(0xC0 | (cp >> 6));
  if (cp < 0x10000) return static_cast<unsigned char>(0xE0 | (cp >> 12));
  return static_cast<unsigned char>(0xF0 | (cp >> 18));
}

// kCategoryChangedSinceBase as plain ranges, and their BMP bitmap.
struct CategoryChanges {
  std::vector<ut::CodePointRange> ranges;
  BmpBitmap bmp;
  unsigned char fast_limit_lead;  // lead bytes below this one start unchanged characters
};

const CategoryChanges& category_changes() {
  static const CategoryChanges changes = [] {
    std::vector<ut::CodePointRange> ranges;
    for (size_t i = 0; i < ut::kCategoryChangedSinceBaseSize; ++i) {
      const ut::CategoryRun& run = ut::kCategoryChangedSinceBase[i];
      if (!ranges.empty() && ranges.back().last + 1 == run.first) {
        ranges.back().last = run.last;
      } else {
        ranges.push_back({run.first, run.last});
      }
    }
    // Never below 0xC0, so that continuation bytes are always skipped.
    unsigned char lead = ranges.empty() ? 0xFF : utf8_lead_byte(ranges[0].first);
    BmpBitmap bmp(ranges.data(), ranges.size());
    return CategoryChanges{std::move(ranges), bmp, std::max<unsigned char>(0xC0, lead)};
  }();
  return changes;
}

// Appends the full canonical decomposition of `cp` to `out`.
void decompose(char32_t cp, std::vector<char32_t>* out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    char32_t s = cp - kSBase;
    out->push_back(kLBase + s / kNCount);
    out->push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out->push_back(kTBase + s % kTCount);
    return;
  }
  if (cp >= 0xC0) {
    const ut::Decomposition* end = ut::kDecompositions + ut::kDecompositionsSize;
    const ut::Decomposition* it =
        std::lower_bound(ut::kDecompositions, end, cp,
                         [](const ut::Decomposition& d, char32_t v) { return d.cp < v; });
    if (it != end && it->cp == cp) {
      out->insert(out->end(), ut::kDecompositionData + it->offset,
                  ut::kDecompositionData + it->offset + it->length);
      return;
    }
  }
  out->push_back(cp);
}

// Stable sort of every run of non-starters by combining class.
void canonical_order(std::vector<char32_t>* cps) {
  std::vector<char32_t>& v = *cps;
  for (size_t i = 1; i < v.size(); ++i) {
    uint8_t cc = canonical_combining_class(v[i]);
    if (cc == 0) continue;
    size_t j = i;
    while (j > 0) {
      uint8_t prev = canonical_combining_class(v[j - 1]);
      if (prev == 0 || prev <= cc) break;
      std::swap(v[j - 1], v[j]);
      --j;
    }
  }
}

// The primary composite of first + second, or 0.
char32_t compose_pair(char32_t first, char32_t second) {
  if (first >= kLBase && first < kLBase + kLCount && second >= kVBase &&
      second < kVBase + kVCount) {
    return kSBase + ((first - kLBase) * kVCount + (second - kVBase)) * kTCount;
  }
  if (first >= kSBase && first < kSBase + kSCount && (first - kSBase) % kTCount == 0 &&
      second > kTBase && second < kTBase + kTCount) {
    return first + (second - kTBase);
  }
  const ut::Composition* end = ut::kCompositions + ut::kCompositionsSize;
  const ut::Composition* it =
      std::lower_bound(ut::kCompositions, end, std::pair{first, second},
                       [](const ut::Composition& c, const std::pair<char32_t, char32_t>& key) {
                         return c.first != key.first ? c.first < key.first : c.second < key.second;
                       });
  if (it != end && it->first == first && it->second == second) return it->composite;
  return 0;
}

// Canonical composition in place (Unicode §3.11, D117).
void compose(std::vector<char32_t>* cps) {
  std::vector<char32_t>& v = *cps;
  size_t out = 0;
  ptrdiff_t starter = -1;
  for (size_t i = 0; i < v.size(); ++i) {
    char32_t c = v[i];
    uint8_t cc = canonical_combining_class(c);
    if (starter >= 0) {
      // Blocked if something sits between the starter and c with a class of 0 or >= cc; the
      // characters in between are canonically ordered, so the last one has the largest class.
      bool adjacent = static_cast<size_t>(starter) + 1 == out;
      uint8_t last_cc = adjacent ? 0 : canonical_combining_class(v[out - 1]);
      if (adjacent || (last_cc != 0 && last_cc < cc)) {
        char32_t composite = compose_pair(v[starter], c);
        if (composite != 0) {
          v[starter] = composite;
          continue;
        }
      }
    }
    v[out++] = c;
    if (cc == 0) starter = static_cast<ptrdiff_t>(out) - 1;
  }
  v.resize(out);
}

void decompose_all(std::string_view text, std::vector<char32_t>* cps) {
  cps->reserve(text.size() + 8);
  size_t i = 0;
  while (i < text.size()) decompose(utf8_decode(text, &i), cps);
  canonical_order(cps);
}

std::string encode(const std::vector<char32_t>& cps) {
  std::string out;
  out.reserve(cps.size() * 2);
  for (char32_t cp : cps) utf8_append(&out, cp);
  return out;
}

}  // namespace

uint8_t canonical_combining_class(char32_t cp) {
  if (cp < 0x300) return 0;
  const ut::CombiningClassRange* end = ut::kCombiningClasses + ut::kCombiningClassesSize;
  const ut::CombiningClassRange* it =
      std::upper_bound(ut::kCombiningClasses, end, cp,
                       [](char32_t v, const ut::CombiningClassRange& r) { return v < r.first; });
  if (it == ut::kCombiningClasses || cp > (it - 1)->last) return 0;
  return (it - 1)->ccc;
}

bool normalize_nfc(std::string_view text, std::string* out) {
  // Below U+0300 (lead bytes < 0xCC) every character is stable under NFC.
  if (!may_change(text, nfc_bitmap(), ut::kNfcUnstable, ut::kNfcUnstableSize, 0xCC)) return false;
  std::vector<char32_t> cps;
  decompose_all(text, &cps);
  compose(&cps);
  std::string result = encode(cps);
  if (result == text) return false;
  *out = std::move(result);
  return true;
}

bool normalize_nfd(std::string_view text, std::string* out) {
  // Below U+00C0 (lead bytes < 0xC3) every character is stable under NFD.
  if (!may_change(text, nfd_bitmap(), ut::kNfdUnstable, ut::kNfdUnstableSize, 0xC3)) return false;
  std::vector<char32_t> cps;
  decompose_all(text, &cps);
  std::string result = encode(cps);
  if (result == text) return false;
  *out = std::move(result);
  return true;
}

std::string to_nfc(std::string_view text) {
  std::string out;
  return normalize_nfc(text, &out) ? out : std::string(text);
}

std::string to_nfd(std::string_view text) {
  std::string out;
  return normalize_nfd(text, &out) ? out : std::string(text);
}

bool has_category_changes(std::string_view text) {
  const CategoryChanges& changes = category_changes();
  if (changes.ranges.empty()) return false;
  return may_change(text, changes.bmp, changes.ranges.data(), changes.ranges.size(),
                    changes.fast_limit_lead);
}

bool is_white_space(char32_t cp) {
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x9 && cp <= 0xD);
  if (cp < 0x85) return false;
  switch (cp) {
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

}  // namespace ponder::text
