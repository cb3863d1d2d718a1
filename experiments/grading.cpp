// Answer extraction and comparison; the rules follow experiments/tasks/arith.py's checker
// (normalize_answer), restricted to what a chat response's content holds.
#include "experiments/grading.h"

#include <algorithm>
#include <cctype>

#include "common/strings.h"

namespace ponder::experiments {

Expected<Grader> parse_grader(std::string_view name) {
  if (name == "boxed-number") return Grader::kBoxedNumber;
  if (name == "exact") return Grader::kExact;
  return error(StatusCode::kInvalidArgument, "unknown grader '%.*s' (boxed-number or exact)",
               static_cast<int>(name.size()), name.data());
}

std::string_view grader_name(Grader grader) {
  return grader == Grader::kBoxedNumber ? "boxed-number" : "exact";
}

std::optional<std::string> last_boxed(std::string_view text) {
  constexpr std::string_view kOpen = "\\boxed{";
  std::optional<std::string> found;
  for (size_t at = text.find(kOpen); at != std::string_view::npos; at = text.find(kOpen, at + 1)) {
    int depth = 1;
    size_t i = at + kOpen.size();
    for (; i < text.size() && depth > 0; ++i) {
      if (text[i] == '{') ++depth;
      if (text[i] == '}') --depth;
    }
    if (depth == 0) found = std::string(text.substr(at + kOpen.size(), i - 1 - at - kOpen.size()));
  }
  return found;
}

std::optional<std::string> canonical_integer(std::string_view text) {
  std::string s;
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = text[i];
    if (std::isspace(c) || c == '$') continue;
    if (text.substr(i, 3) == "\u2212") {  // Unicode minus sign
      s.push_back('-');
      i += 2;
      continue;
    }
    s.push_back(static_cast<char>(c));
  }
  if (!s.empty() && s.back() == '.') s.pop_back();
  bool negative = false;
  size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) negative = s[i++] == '-';
  std::string digits;
  const size_t first = i;
  for (; i < s.size(); ++i) {
    if (std::isdigit(static_cast<unsigned char>(s[i]))) {
      digits.push_back(s[i]);
      continue;
    }
    // A thousands separator ("1,239"): after 1-3 digits or a group, followed by exactly three.
    const size_t group_start = s.rfind(',', i - 1);
    const size_t before = i - (group_start == std::string::npos || group_start < first
                                   ? first
                                   : group_start + 1);
    const size_t next = std::min(s.find_first_not_of("0123456789", i + 1), s.size());
    const bool grouped = s[i] == ',' && before >= 1 && before <= 3 &&
                         (group_start == std::string::npos || group_start < first || before == 3) &&
                         next == i + 4;
    if (!grouped) return std::nullopt;
  }
  if (digits.empty()) return std::nullopt;
  const size_t nz = digits.find_first_not_of('0');
  digits = nz == std::string::npos ? "0" : digits.substr(nz);
  return (negative && digits != "0" ? "-" : "") + digits;
}

Grade grade(Grader grader, std::string_view content, std::string_view answer) {
  if (const size_t end = content.rfind("</think>"); end != std::string_view::npos)
    content = content.substr(end + 8);
  Grade g;
  if (grader == Grader::kExact) {
    g.extracted = std::string(trim(content));
    g.correct = *g.extracted == trim(answer);
    return g;
  }
  const std::optional<std::string> boxed = last_boxed(content);
  if (!boxed) return g;
  const std::optional<std::string> value = canonical_integer(*boxed);
  g.extracted = value ? *value : *boxed;
  const std::optional<std::string> expected = canonical_integer(answer);
  g.correct = value && expected && *value == *expected;
  return g;
}

}  // namespace ponder::experiments
