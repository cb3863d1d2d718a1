// Tests of the regex property classes: every general category, negation and case-insensitive
// form in regex_properties.jsonl must match exactly the code points Hugging Face's regex engine
// matches, through PCRE2's own tables (text without changed characters) and through explicit
// ranges (text with them).
#include "coordinator/text/unicode_regex.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/strings.h"
#include "coordinator/text/unicode.h"
#include "coordinator/text/unicode_property.h"
#include "coordinator/text/unicode_tables.h"
#include "coordinator/text/utf8.h"

namespace ponder::text {
namespace {

const std::string kDataDir = std::string(PONDER_TEST_DATA_DIR) + "/tokenizers";

std::string utf8(char32_t cp) {
  std::string out;
  utf8_append(&out, cp);
  return out;
}

// Planes 4 to 13 (unassigned) and 15 to 16 (private use) are one category each: only their first
// and last 256 code points are tested, which keeps the test fast.
bool tested(char32_t cp) {
  if (cp >= 0xD800 && cp <= 0xDFFF) return false;
  char32_t plane = cp >> 16, offset = cp & 0xFFFF;
  bool uniform = (plane >= 4 && plane <= 13) || plane >= 15;
  return !uniform || offset < 0x100 || offset >= 0xFF00;
}

// The tested code points, in order, as UTF-8, and the same without the code points whose category
// differs between PCRE2's Unicode version and Hugging Face's.
struct CodePointTexts {
  std::string all;
  std::string unchanged;
  std::vector<bool> changed;  // by code point
};

const CodePointTexts& code_point_texts() {
  static const CodePointTexts texts = [] {
    CodePointTexts t;
    t.changed.resize(0x110000);
    for (char32_t cp = 0; cp <= 0x10FFFF; ++cp) {
      if (!tested(cp)) continue;
      std::string c = utf8(cp);
      t.all += c;
      t.changed[cp] = has_category_changes(c);
      if (!t.changed[cp]) t.unchanged += c;
    }
    return t;
  }();
  return texts;
}

std::string ranges_text(const std::vector<char32_t>& cps);

// What differs between two sorted code point lists, for a failure message.
std::string difference(const std::vector<char32_t>& got, const std::vector<char32_t>& want) {
  std::vector<char32_t> extra, missing;
  std::set_difference(got.begin(), got.end(), want.begin(), want.end(), std::back_inserter(extra));
  std::set_difference(want.begin(), want.end(), got.begin(), got.end(),
                      std::back_inserter(missing));
  extra.resize(std::min<size_t>(extra.size(), 12));
  missing.resize(std::min<size_t>(missing.size(), 12));
  return "matched but should not: " + ranges_text(extra) +
         "\nnot matched but should: " + ranges_text(missing);
}

// "0041-005A 00AA ..." (the fixture's form) of sorted code points.
std::string ranges_text(const std::vector<char32_t>& cps) {
  std::string out;
  for (size_t i = 0; i < cps.size();) {
    size_t j = i;
    while (j + 1 < cps.size() && cps[j + 1] == cps[j] + 1) ++j;
    if (!out.empty()) out += ' ';
    out += strformat("%04X", static_cast<unsigned>(cps[i]));
    if (j > i) out += strformat("-%04X", static_cast<unsigned>(cps[j]));
    i = j + 1;
  }
  return out;
}

std::vector<char32_t> parse_ranges(const std::string& text) {
  std::vector<char32_t> cps;
  std::istringstream in(text);
  std::string item;
  while (in >> item) {
    size_t dash = item.find('-');
    char32_t first = std::stoul(item.substr(0, dash), nullptr, 16);
    char32_t last =
        dash == std::string::npos ? first : std::stoul(item.substr(dash + 1), nullptr, 16);
    for (char32_t cp = first; cp <= last; ++cp) cps.push_back(cp);
  }
  return cps;
}

// The code points of `text` that the one-character `pattern` matches.
std::vector<char32_t> matched_code_points(const UnicodeRegex& re, std::string_view text) {
  std::vector<TextSpan> spans;
  re.find_all(text, &spans);
  std::vector<char32_t> cps;
  for (const TextSpan& span : spans) {
    for (size_t i = span.begin; i < span.end;) cps.push_back(utf8_decode(text, &i));
  }
  return cps;
}

TEST(UnicodeRegexPropertyTest, ClassesMatchHuggingFace) {
  std::ifstream in(kDataDir + "/regex_properties.jsonl");
  ASSERT_TRUE(in);
  const CodePointTexts& texts = code_point_texts();
  ASSERT_FALSE(has_category_changes(texts.unchanged));
  ASSERT_TRUE(has_category_changes(texts.all));
  size_t patterns = 0;
  std::string line;
  while (std::getline(in, line)) {
    nlohmann::json j = nlohmann::json::parse(line);
    std::string pattern = j["pattern"].get<std::string>();
    std::vector<char32_t> want;
    for (char32_t cp : parse_ranges(j["ranges"].get<std::string>())) {
      if (tested(cp)) want.push_back(cp);
    }
    // Runs of matches, so that find_all returns a span per range, not per code point.
    Expected<UnicodeRegex> re = UnicodeRegex::compile("(?:" + pattern + ")+");
    ASSERT_TRUE(re) << re.error().to_string();
    std::vector<char32_t> got = matched_code_points(*re, texts.all);
    EXPECT_TRUE(got == want) << pattern << "\n" << difference(got, want);
    std::vector<char32_t> want_unchanged;
    for (char32_t cp : want) {
      if (!texts.changed[cp]) want_unchanged.push_back(cp);
    }
    got = matched_code_points(*re, texts.unchanged);
    EXPECT_TRUE(got == want_unchanged) << pattern << " on text without changed characters\n"
                                       << difference(got, want_unchanged);
    // The form for a PCRE2 of another Unicode version: explicit ranges only.
    Expected<UnicodeRegex> ranges =
        UnicodeRegex::compile(oniguruma_to_pcre2("(?:" + pattern + ")+", CategorySource::kRanges));
    ASSERT_TRUE(ranges) << ranges.error().to_string();
    got = matched_code_points(*ranges, texts.all);
    EXPECT_TRUE(got == want) << pattern << " with explicit ranges only\n" << difference(got, want);
    ++patterns;
  }
  EXPECT_GT(patterns, 70u);
}

TEST(UnicodeRegexPropertyTest, NamesAreMatchedLoosely) {
  EXPECT_EQ(oniguruma_to_pcre2(R"(\p{Letter}\P{decimal_number}[\p{^Lu}\p{ Other Symbol }])"),
            R"(\p{L}\P{Nd}[\P{Lu}\p{So}])");
  // Scripts and binary properties are left to PCRE2, and so is a property name with no braces.
  EXPECT_EQ(oniguruma_to_pcre2(R"(\p{Han}\p{Alphabetic}\pL\d)"), R"(\p{Han}\p{Alphabetic}\pL\d)");
  Expected<UnicodeRegex> bad = UnicodeRegex::compile(R"(\p{NoSuchProperty})");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), StatusCode::kInvalidArgument);
}

TEST(UnicodeRegexPropertyTest, RangesStayOutOfCaseFoldingOutsideClasses) {
  std::string lu = "[" + category_class_body(CategorySet{1} << unicode_tables::kLu, false) + "]";
  std::string ll = category_class_body(CategorySet{1} << unicode_tables::kLl, false, true);
  EXPECT_NE(ll.find("\\x{A7CB}"), std::string::npos);  // U+0264's capital, new in 16.0
  EXPECT_EQ(oniguruma_to_pcre2(R"(\p{Lu}(?i:'s|\p{Lu})\p{Lu})", CategorySource::kRanges),
            lu + "(?i:'s|(?-i:" + lu + "))" + lu);
  EXPECT_EQ(oniguruma_to_pcre2(R"((?i)\p{Lu}(?-i)\p{Lu})", CategorySource::kRanges),
            "(?i)(?-i:" + lu + ")(?-i)" + lu);
  // Inside a case-insensitive class Oniguruma folds a property, so PCRE2 gets the ranges and
  // the newer case partners even with its own tables; elsewhere it keeps \p.
  EXPECT_EQ(oniguruma_to_pcre2(R"((?i:[\p{Ll}])[\p{Ll}])"), "(?i:[" + ll + R"(])[\p{Ll}])");
  // A group that is not an option group keeps the options around it.
  EXPECT_EQ(oniguruma_to_pcre2(R"((?i)(?:[\p{Ll}]))"), "(?i)(?:[" + ll + "])");
}

TEST(UnicodeRegexPropertyTest, EachSourceHasItsForm) {
  const std::string kawi_a = "\\x{11F04}";
  std::string plus =
      oniguruma_to_pcre2(R"(\p{L}+[^\p{N}]\P{Zs}[\P{L}])", CategorySource::kEnginePlusChanges);
  // \p{L} and [^\p{N}] get the changed characters; \P{Zs} has none; [\P{L}] needs the complement.
  EXPECT_EQ(plus.rfind("[\\p{L}\\x{", 0), 0u) << plus;
  EXPECT_NE(plus.find(kawi_a), std::string::npos);
  EXPECT_NE(plus.find("[^\\p{N}\\x{"), std::string::npos) << plus;
  EXPECT_NE(plus.find("\\P{Zs}["), std::string::npos) << plus;
  EXPECT_EQ(plus.find("\\P{L}"), std::string::npos) << plus;
  // U+1171E left Mn, and every new character left Cn: no union with PCRE2's tables exists.
  std::string mn = oniguruma_to_pcre2(R"(\p{Mn}\p{Cn})", CategorySource::kEnginePlusChanges);
  EXPECT_EQ(mn.find("\\p{"), std::string::npos) << mn;
  std::string ranges = oniguruma_to_pcre2(R"(\p{L}\d)", CategorySource::kRanges);
  EXPECT_EQ(ranges.find("\\p{"), std::string::npos);
  EXPECT_EQ(ranges.find("\\d"), std::string::npos);
  EXPECT_EQ(oniguruma_to_pcre2(R"(\p{L}\d)", CategorySource::kEngine), R"(\p{L}\d)");
}

TEST(UnicodeRegexPropertyTest, NewerCharactersAreLettersDigitsAndPunctuation) {
  // Unicode 15.0 (Kawi), 15.1 (CJK Ext. I) and 16.0 (Garay): unassigned in PCRE2 10.42's tables.
  Expected<UnicodeRegex> letters = UnicodeRegex::compile(R"(\p{L}+)");
  ASSERT_TRUE(letters);
  std::string kawi = "ab\U00011F04\U00011F05cd";
  std::vector<TextSpan> spans;
  letters->find_all(kawi, &spans);
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0].end, kawi.size());
  EXPECT_TRUE(letters->search("\U0002EBF0"));
  EXPECT_TRUE(letters->search("\U00010D50"));
  EXPECT_FALSE(letters->search("\U00010940"));  // Unicode 17.0: unknown to Hugging Face too
  Expected<UnicodeRegex> digits = UnicodeRegex::compile(R"(^\d\p{N}[\p{P}]$)");
  ASSERT_TRUE(digits);
  EXPECT_TRUE(digits->search("\U00011F50\U00011F51\U00011F43"));
}

TEST(UnicodeRegexPropertyTest, CategoryChangesAreFound) {
  EXPECT_FALSE(has_category_changes("plain ASCII, caf\u00e9, \u4e2d\u6587, \U0001F600"));
  EXPECT_TRUE(has_category_changes("x\U00011F04"));  // assigned in 15.0
  EXPECT_TRUE(has_category_changes("\u31EF tail"));  // assigned in 15.1
  EXPECT_TRUE(has_category_changes("\U0001171E"));   // Mn in 14.0, Mc since
  EXPECT_FALSE(has_category_changes("\U00011700\U00011720"));
}

}  // namespace
}  // namespace ponder::text
