// The general-category properties of regex patterns (\p{L}, \p{Lu}, \p{Letter}, ...): their
// names, and their code points at unicode_tables::kCategoryVersion as PCRE2 class bodies.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "coordinator/text/unicode_tables.h"

namespace ponder::text {

// A set of general categories: bit c stands for unicode_tables::GeneralCategory c.
using CategorySet = uint32_t;

struct CategoryProperty {
  CategorySet categories;
  std::string_view pcre2_name;  // the short name PCRE2 knows: "L", "Lu", "LC", ...
};

// The general category or group that a property name stands for, matched loosely as Oniguruma
// does (case, spaces, '_' and '-' ignored): short names ("Lu", "L", "LC") and the long names and
// aliases of Unicode's PropertyValueAliases ("Uppercase_Letter", "Letter", "punct"). nullopt
// for every other property (scripts, Alphabetic, Any, ...).
std::optional<CategoryProperty> find_category_property(std::string_view name);

// The general category of `cp` at unicode_tables::kCategoryVersion.
unicode_tables::GeneralCategory general_category(char32_t cp);

// The code points of `categories` (with `negate`: of all the other categories) as the inside of
// a PCRE2 character class, e.g. "\x{41}-\x{5A}\x{61}-\x{7A}...". With `case_partners`, also
// the case partners that PCRE2's own case folding does not know (for case-insensitive classes).
std::string category_class_body(CategorySet categories, bool negate, bool case_partners = false);

// The code points of `categories` that changed category since unicode_tables::
// kCategoryBaseVersion, as class ranges: with PCRE2 tables of that version, "\p{X}" plus these
// is exactly `categories` at kCategoryVersion. nullopt when no such union exists because a code
// point left `categories` since (U+1171E left Mn; every newly assigned one left Cn).
std::optional<std::string> category_changes_body(CategorySet categories);

}  // namespace ponder::text
