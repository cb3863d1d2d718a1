// ReasoningParser: one-shot and streaming split of reasoning vs content by delimiters.
#include "coordinator/text/reasoning_parser.h"

#include <algorithm>

#include "common/check.h"
#include "coordinator/text/utf8.h"

namespace ponder::text {
namespace {

bool all_whitespace(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; });
}

std::string_view strip_newlines(std::string_view s, bool left, bool right) {
  if (left) {
    while (!s.empty() && s.front() == '\n') s.remove_prefix(1);
  }
  if (right) {
    while (!s.empty() && s.back() == '\n') s.remove_suffix(1);
  }
  return s;
}

// Length of the longest suffix of `text` that is a proper prefix of `delimiter`: those bytes
// might become the delimiter when more text arrives.
size_t partial_delimiter_suffix(std::string_view text, std::string_view delimiter) {
  size_t max = std::min(text.size(), delimiter.size() - 1);
  for (size_t n = max; n > 0; --n) {
    if (text.substr(text.size() - n) == delimiter.substr(0, n)) return n;
  }
  return 0;
}

Expected<std::string> json_string(const nlohmann::json& j, const std::string& key,
                                  std::string_view origin) {
  if (!j.at(key).is_string()) {
    return error(StatusCode::kInvalidArgument, "%.*s: '%s' must be a string",
                 static_cast<int>(origin.size()), origin.data(), key.c_str());
  }
  return j.at(key).get<std::string>();
}

Expected<bool> json_bool(const nlohmann::json& j, const std::string& key, std::string_view origin) {
  if (!j.at(key).is_boolean()) {
    return error(StatusCode::kInvalidArgument, "%.*s: '%s' must be true or false",
                 static_cast<int>(origin.size()), origin.data(), key.c_str());
  }
  return j.at(key).get<bool>();
}

}  // namespace

Status ReasoningConfig::validate() const {
  if (end.empty()) {
    return error(StatusCode::kInvalidArgument, "reasoning config: 'end' must not be empty");
  }
  if (start.empty() && !starts_in_reasoning) {
    return error(StatusCode::kInvalidArgument,
                 "reasoning config: 'start' may be empty only with starts_in_reasoning");
  }
  if (trim_newlines && end.front() == '\n') {
    return error(StatusCode::kInvalidArgument,
                 "reasoning config: with trim_newlines, 'end' must not begin with a newline");
  }
  return Status::ok_status();
}

Expected<ReasoningConfig> ReasoningConfig::from_json(const nlohmann::json& j,
                                                     std::string_view origin) {
  if (!j.is_object()) {
    return error(StatusCode::kInvalidArgument, "%.*s: expected an object",
                 static_cast<int>(origin.size()), origin.data());
  }
  ReasoningConfig config;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    if (key == "start") {
      PONDER_ASSIGN_OR_RETURN(config.start, json_string(j, key, origin));
    } else if (key == "end") {
      PONDER_ASSIGN_OR_RETURN(config.end, json_string(j, key, origin));
    } else if (key == "starts_in_reasoning") {
      PONDER_ASSIGN_OR_RETURN(config.starts_in_reasoning, json_bool(j, key, origin));
    } else if (key == "trim_newlines") {
      PONDER_ASSIGN_OR_RETURN(config.trim_newlines, json_bool(j, key, origin));
    } else {
      return error(StatusCode::kInvalidArgument,
                   "%.*s: unknown key '%s' (expected start, end, starts_in_reasoning, "
                   "trim_newlines)",
                   static_cast<int>(origin.size()), origin.data(), key.c_str());
    }
  }
  Status status = config.validate();
  if (!status.ok()) return tl::unexpected(status.with_context(origin));
  return config;
}

bool prompt_opens_reasoning(std::string_view prompt, const ReasoningConfig& config) {
  if (config.start.empty()) return config.starts_in_reasoning;
  size_t open = prompt.rfind(config.start);
  if (open == std::string_view::npos) return false;
  size_t close = prompt.rfind(config.end);
  return close == std::string_view::npos || close < open;
}

ReasoningParser::ReasoningParser(ReasoningConfig config) : config_(std::move(config)) {
  Status status = config_.validate();
  PONDER_CHECK(status.ok(), "%s", status.message().c_str());
  phase_ = config_.starts_in_reasoning ? Phase::kReasoning : Phase::kBeforeReasoning;
}

ReasoningSplit ReasoningParser::parse(std::string_view text, const ReasoningConfig& config) {
  ReasoningSplit result;
  const bool trim = config.trim_newlines;
  size_t pos = 0;
  if (!config.starts_in_reasoning) {
    size_t open = text.find(config.start);
    if (open == std::string_view::npos) {
      result.content = std::string(text);
      return result;
    }
    std::string_view before = text.substr(0, open);
    if (!(trim && all_whitespace(before))) result.content = std::string(before);
    pos = open + config.start.size();
  }
  size_t close = text.find(config.end, pos);
  std::string_view body =
      text.substr(pos, close == std::string_view::npos ? std::string_view::npos : close - pos);
  result.reasoning = std::string(trim ? strip_newlines(body, true, true) : body);
  if (close == std::string_view::npos) return result;
  std::string_view after = text.substr(close + config.end.size());
  result.content += std::string(trim ? strip_newlines(after, true, false) : after);
  return result;
}

ReasoningSplit ReasoningParser::feed(std::string_view chunk) {
  ReasoningSplit out;
  pending_.append(chunk);
  // A phase change hands the rest of pending_ to the next phase in the same call.
  while (true) {
    Phase before = phase_;
    switch (phase_) {
      case Phase::kBeforeReasoning:
        step_before(out);
        break;
      case Phase::kReasoning:
        step_reasoning(out);
        break;
      case Phase::kAfterReasoning:
        step_after(out);
        break;
    }
    if (phase_ == before) return out;
  }
}

void ReasoningParser::step_before(ReasoningSplit& out) {
  const bool trim = config_.trim_newlines;
  size_t open = pending_.find(config_.start);
  if (open != std::string::npos) {
    std::string_view before(pending_.data(), open);
    if (!(trim && !seen_non_space_ && all_whitespace(before))) out.content.append(before);
    pending_.erase(0, open + config_.start.size());
    phase_ = Phase::kReasoning;
    return;
  }
  size_t hold =
      std::max(partial_delimiter_suffix(pending_, config_.start), utf8_incomplete_tail(pending_));
  std::string_view ready(pending_.data(), pending_.size() - hold);
  // Whitespace-only text before `start` is dropped when trimming, so it waits until we know.
  if (trim && !seen_non_space_ && all_whitespace(ready)) return;
  seen_non_space_ = true;
  out.content.append(ready);
  pending_.erase(0, ready.size());
}

void ReasoningParser::step_reasoning(ReasoningSplit& out) {
  const bool trim = config_.trim_newlines;
  if (trim && at_block_start_) {
    size_t newlines = pending_.find_first_not_of('\n');
    pending_.erase(0, newlines == std::string::npos ? pending_.size() : newlines);
    if (!pending_.empty()) at_block_start_ = false;
  }
  size_t close = pending_.find(config_.end);
  if (close != std::string::npos) {
    std::string_view body(pending_.data(), close);
    out.reasoning.append(trim ? strip_newlines(body, false, true) : body);
    pending_.erase(0, close + config_.end.size());
    phase_ = Phase::kAfterReasoning;
    return;
  }
  size_t hold =
      std::max(partial_delimiter_suffix(pending_, config_.end), utf8_incomplete_tail(pending_));
  // Newlines right before `end` are trimmed, so trailing ones wait until we know.
  while (trim && hold < pending_.size() && pending_[pending_.size() - hold - 1] == '\n') ++hold;
  out.reasoning.append(pending_, 0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
}

void ReasoningParser::step_after(ReasoningSplit& out) {
  if (config_.trim_newlines && at_content_start_) {
    size_t newlines = pending_.find_first_not_of('\n');
    pending_.erase(0, newlines == std::string::npos ? pending_.size() : newlines);
    if (!pending_.empty()) at_content_start_ = false;
  }
  size_t hold = utf8_incomplete_tail(pending_);
  out.content.append(pending_, 0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
}

ReasoningSplit ReasoningParser::finish() {
  ReasoningSplit out;
  switch (phase_) {
    case Phase::kBeforeReasoning:
    case Phase::kAfterReasoning:
      out.content = std::move(pending_);
      break;
    case Phase::kReasoning:
      out.reasoning = std::string(config_.trim_newlines ? strip_newlines(pending_, false, true)
                                                        : std::string_view(pending_));
      break;
  }
  pending_.clear();
  return out;
}

}  // namespace ponder::text
