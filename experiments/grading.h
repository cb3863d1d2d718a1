// Offline grading of one sample's answer text against a problem's answer: `boxed-number` (the
// last \boxed{...} read as an integer) and `exact` (trimmed string equality).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace ponder::experiments {

enum class Grader { kBoxedNumber, kExact };

Expected<Grader> parse_grader(std::string_view name);  // "boxed-number" | "exact"
std::string_view grader_name(Grader grader);

struct Grade {
  std::optional<std::string> extracted;  // the answer read from the text; none: no answer found
  bool correct = false;
};

// `content` is the answer part of a chat response (reasoning split off by the server). For
// servers that leave the thinking in the content, only the text after the last `</think>` is
// looked at.
Grade grade(Grader grader, std::string_view content, std::string_view answer);

// The inner text of the last balanced \boxed{...} in `text`, if any.
std::optional<std::string> last_boxed(std::string_view text);
// An integer in canonical form ("+007" → "7", "1,239" → "1239", "-0" → "0", "−5" → "-5"),
// after removing whitespace and `$` and a final `.`; none when it is not an integer.
std::optional<std::string> canonical_integer(std::string_view text);

}  // namespace ponder::experiments
