// General-category property names (PropertyValueAliases.txt) and their code point ranges from
// unicode_category_tables.cpp.
#include "coordinator/text/unicode_property.h"

#include <algorithm>
#include <cstdio>

#include "coordinator/text/unicode_tables.h"

namespace ponder::text {
namespace {

namespace ut = unicode_tables;

constexpr CategorySet bit(ut::GeneralCategory c) { return CategorySet{1} << c; }

constexpr CategorySet kLetter =
    bit(ut::kLu) | bit(ut::kLl) | bit(ut::kLt) | bit(ut::kLm) | bit(ut::kLo);
constexpr CategorySet kCasedLetter = bit(ut::kLu) | bit(ut::kLl) | bit(ut::kLt);
constexpr CategorySet kMark = bit(ut::kMn) | bit(ut::kMc) | bit(ut::kMe);
constexpr CategorySet kNumber = bit(ut::kNd) | bit(ut::kNl) | bit(ut::kNo);
constexpr CategorySet kPunctuation = bit(ut::kPc) | bit(ut::kPd) | bit(ut::kPs) | bit(ut::kPe) |
                                     bit(ut::kPi) | bit(ut::kPf) | bit(ut::kPo);
constexpr CategorySet kSymbol = bit(ut::kSm) | bit(ut::kSc) | bit(ut::kSk) | bit(ut::kSo);
constexpr CategorySet kSeparator = bit(ut::kZs) | bit(ut::kZl) | bit(ut::kZp);
constexpr CategorySet kOther =
    bit(ut::kCc) | bit(ut::kCf) | bit(ut::kCs) | bit(ut::kCo) | bit(ut::kCn);
constexpr CategorySet kAll = (CategorySet{1} << ut::kGeneralCategoryCount) - 1;

struct Name {
  std::string_view loose;  // lower case, without spaces, '_' and '-'
  std::string_view pcre2_name;
  CategorySet categories;
};

// Short names, then long names and aliases, of the general categories and their groups.
constexpr Name kNames[] = {
    {"l", "L", kLetter},
    {"lc", "LC", kCasedLetter},
    {"lu", "Lu", bit(ut::kLu)},
    {"ll", "Ll", bit(ut::kLl)},
    {"lt", "Lt", bit(ut::kLt)},
    {"lm", "Lm", bit(ut::kLm)},
    {"lo", "Lo", bit(ut::kLo)},
    {"m", "M", kMark},
    {"mn", "Mn", bit(ut::kMn)},
    {"mc", "Mc", bit(ut::kMc)},
    {"me", "Me", bit(ut::kMe)},
    {"n", "N", kNumber},
    {"nd", "Nd", bit(ut::kNd)},
    {"nl", "Nl", bit(ut::kNl)},
    {"no", "No", bit(ut::kNo)},
    {"p", "P", kPunctuation},
    {"pc", "Pc", bit(ut::kPc)},
    {"pd", "Pd", bit(ut::kPd)},
    {"ps", "Ps", bit(ut::kPs)},
    {"pe", "Pe", bit(ut::kPe)},
    {"pi", "Pi", bit(ut::kPi)},
    {"pf", "Pf", bit(ut::kPf)},
    {"po", "Po", bit(ut::kPo)},
    {"s", "S", kSymbol},
    {"sm", "Sm", bit(ut::kSm)},
    {"sc", "Sc", bit(ut::kSc)},
    {"sk", "Sk", bit(ut::kSk)},
    {"so", "So", bit(ut::kSo)},
    {"z", "Z", kSeparator},
    {"zs", "Zs", bit(ut::kZs)},
    {"zl", "Zl", bit(ut::kZl)},
    {"zp", "Zp", bit(ut::kZp)},
    {"c", "C", kOther},
    {"cc", "Cc", bit(ut::kCc)},
    {"cf", "Cf", bit(ut::kCf)},
    {"cs", "Cs", bit(ut::kCs)},
    {"co", "Co", bit(ut::kCo)},
    {"cn", "Cn", bit(ut::kCn)},
    {"letter", "L", kLetter},
    {"casedletter", "LC", kCasedLetter},
    {"uppercaseletter", "Lu", bit(ut::kLu)},
    {"lowercaseletter", "Ll", bit(ut::kLl)},
    {"titlecaseletter", "Lt", bit(ut::kLt)},
    {"modifierletter", "Lm", bit(ut::kLm)},
    {"otherletter", "Lo", bit(ut::kLo)},
    {"mark", "M", kMark},
    {"combiningmark", "M", kMark},
    {"nonspacingmark", "Mn", bit(ut::kMn)},
    {"spacingmark", "Mc", bit(ut::kMc)},
    {"enclosingmark", "Me", bit(ut::kMe)},
    {"number", "N", kNumber},
    {"decimalnumber", "Nd", bit(ut::kNd)},
    {"letternumber", "Nl", bit(ut::kNl)},
    {"othernumber", "No", bit(ut::kNo)},
    {"punctuation", "P", kPunctuation},
    {"punct", "P", kPunctuation},
    {"connectorpunctuation", "Pc", bit(ut::kPc)},
    {"dashpunctuation", "Pd", bit(ut::kPd)},
    {"openpunctuation", "Ps", bit(ut::kPs)},
    {"closepunctuation", "Pe", bit(ut::kPe)},
    {"initialpunctuation", "Pi", bit(ut::kPi)},
    {"finalpunctuation", "Pf", bit(ut::kPf)},
    {"otherpunctuation", "Po", bit(ut::kPo)},
    {"symbol", "S", kSymbol},
    {"mathsymbol", "Sm", bit(ut::kSm)},
    {"currencysymbol", "Sc", bit(ut::kSc)},
    {"modifiersymbol", "Sk", bit(ut::kSk)},
    {"othersymbol", "So", bit(ut::kSo)},
    {"separator", "Z", kSeparator},
    {"spaceseparator", "Zs", bit(ut::kZs)},
    {"lineseparator", "Zl", bit(ut::kZl)},
    {"paragraphseparator", "Zp", bit(ut::kZp)},
    {"other", "C", kOther},
    {"control", "Cc", bit(ut::kCc)},
    {"format", "Cf", bit(ut::kCf)},
    {"surrogate", "Cs", bit(ut::kCs)},
    {"privateuse", "Co", bit(ut::kCo)},
    {"unassigned", "Cn", bit(ut::kCn)},
};

void append_code_point(char32_t cp, std::string* out) {
  char buffer[16];
  std::snprintf(buffer, sizeof(buffer), "\\x{%X}", static_cast<unsigned>(cp));
  *out += buffer;
}

}  // namespace

std::optional<CategoryProperty> find_category_property(std::string_view name) {
  std::string loose;
  for (char c : name) {
    if (c == ' ' || c == '_' || c == '-') continue;
    loose += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  for (const Name& n : kNames) {
    if (n.loose == loose) return CategoryProperty{n.categories, n.pcre2_name};
  }
  return std::nullopt;
}

ut::GeneralCategory general_category(char32_t cp) {
  const ut::CategoryRun* end = ut::kCategoryRuns + ut::kCategoryRunsSize;
  const ut::CategoryRun* it = std::upper_bound(
      ut::kCategoryRuns, end, cp, [](char32_t v, const ut::CategoryRun& r) { return v < r.first; });
  return it == ut::kCategoryRuns ? ut::kCn : (it - 1)->category;
}

std::optional<std::string> category_changes_body(CategorySet categories) {
  auto in_set = [&](ut::GeneralCategory c) { return ((categories >> c) & 1) != 0; };
  std::string out;
  for (size_t i = 0; i < ut::kCategoryChangedSinceBaseSize; ++i) {
    const ut::CategoryRun& run = ut::kCategoryChangedSinceBase[i];  // category: the base one
    bool was_in = in_set(run.category);
    // Sub-runs of one current category inside the changed run.
    for (char32_t first = run.first; first <= run.last;) {
      ut::GeneralCategory now = general_category(first);
      char32_t last = first;
      while (last < run.last && general_category(last + 1) == now) ++last;
      if (was_in && !in_set(now)) return std::nullopt;
      if (!was_in && in_set(now)) {
        append_code_point(first, &out);
        if (last != first) {
          out += '-';
          append_code_point(last, &out);
        }
      }
      first = last + 1;
    }
  }
  return out;
}

std::string category_class_body(CategorySet categories, bool negate, bool case_partners) {
  if (negate) categories = ~categories & kAll;
  std::string out;
  bool open = false;  // a range [first, last] is pending
  char32_t first = 0, last = 0;
  auto flush = [&] {
    if (!open) return;
    append_code_point(first, &out);
    if (last != first) {
      out += '-';
      append_code_point(last, &out);
    }
    open = false;
  };
  for (size_t i = 0; i < ut::kCategoryRunsSize; ++i) {
    const ut::CategoryRun& run = ut::kCategoryRuns[i];
    if (((categories >> run.category) & 1) == 0) continue;
    char32_t run_first = run.first, run_last = run.last;
    // Surrogates never occur in UTF-8 text, and PCRE2 in UTF mode refuses them in a class.
    if (run.category == ut::kCs) continue;
    if (open && run_first == last + 1) {
      last = run_last;
      continue;
    }
    flush();
    first = run_first;
    last = run_last;
    open = true;
  }
  flush();
  if (case_partners) {
    auto in_set = [&](char32_t cp) { return ((categories >> general_category(cp)) & 1) != 0; };
    for (size_t i = 0; i < ut::kCaseFoldPairsSinceBaseSize; ++i) {
      const ut::CaseFoldPair& pair = ut::kCaseFoldPairsSinceBase[i];
      bool first = in_set(pair.first), second = in_set(pair.second);
      if (first != second) append_code_point(first ? pair.second : pair.first, &out);
    }
  }
  return out;
}

}  // namespace ponder::text
