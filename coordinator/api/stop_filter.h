// StopStringFilter: cuts a streamed completion at the first stop string, vLLM's way. Text that
// could be the start of a stop string is held back until the next text shows it is not; the text
// released over a whole stream, plus finish(), is the completion up to (and, with
// include_stop_str_in_output, including) the first stop string, or all of it when none matched.
// One per choice; not thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ponder::coordinator::api {

class StopStringFilter {
 public:
  StopStringFilter(std::vector<std::string> stops, bool include_stop);

  // Appends `text` and returns what can be released now. After a match returns "" for good.
  std::string feed(std::string_view text);
  // End of the completion: releases what was held back (nothing after a match).
  std::string finish();

  bool matched() const { return matched_; }
  // The stop string that matched (empty before a match).
  const std::string& match() const { return match_; }

 private:
  std::vector<std::string> stops_;
  bool include_stop_;
  std::string held_;
  bool matched_ = false;
  std::string match_;
};

}  // namespace ponder::coordinator::api
