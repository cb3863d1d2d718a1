// Tool-call extraction for the Hermes/Qwen, Llama-3 JSON and DeepSeek-V3 formats.
#include "coordinator/text/tool_call_parser.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>

namespace ponder::text {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kHermesStart = "<tool_call>";
constexpr std::string_view kHermesEnd = "</tool_call>";
constexpr std::string_view kDeepSeekCallsBegin = "<｜tool▁calls▁begin｜>";
constexpr std::string_view kDeepSeekCallsEnd = "<｜tool▁calls▁end｜>";
constexpr std::string_view kDeepSeekCallBegin = "<｜tool▁call▁begin｜>";
constexpr std::string_view kDeepSeekCallEnd = "<｜tool▁call▁end｜>";
constexpr std::string_view kDeepSeekSep = "<｜tool▁sep｜>";
constexpr std::string_view kPythonTag = "<|python_tag|>";

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool all_space(std::string_view s) { return std::all_of(s.begin(), s.end(), is_space); }

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// Length of the longest suffix of `text` that is a proper prefix of `marker`: bytes that the next
// text may complete into the marker.
// The first `marker` in `text` outside a JSON string: a call's arguments may quote the block's
// own end marker ("</tool_call>", "<｜tool▁calls▁end｜>") and the block does not end there.
size_t find_outside_strings(std::string_view text, std::string_view marker) {
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (text.compare(i, marker.size(), marker) == 0) {
      return i;
    }
  }
  return std::string_view::npos;
}

size_t partial_marker_suffix(std::string_view text, std::string_view marker) {
  for (size_t n = std::min(text.size(), marker.size() - 1); n > 0; --n)
    if (text.substr(text.size() - n) == marker.substr(0, n)) return n;
  return 0;
}

// One past the '}' that closes the JSON object opening at s[begin] ('{'), or npos.
size_t json_object_end(std::string_view s, size_t begin) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = begin; i < s.size(); ++i) {
    char c = s[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (--depth == 0) return i + 1;
    }
  }
  return std::string_view::npos;
}

// A ```json fence around DeepSeek's arguments, dropped.
std::string_view strip_fence(std::string_view s) {
  s = trim(s);
  if (starts_with(s, "```")) {
    s.remove_prefix(3);
    if (starts_with(s, "json")) s.remove_prefix(4);
    if (s.size() >= 3 && s.substr(s.size() - 3) == "```") s.remove_suffix(3);
  }
  return trim(s);
}

// `args` as a compact JSON object: an object, or a string holding one. nullopt otherwise.
std::optional<std::string> arguments_text(const Json& args) {
  if (args.is_string()) {
    Json parsed = Json::parse(args.get<std::string>(), nullptr, false);
    if (!parsed.is_object()) return std::nullopt;
    return parsed.dump(-1, ' ', false, Json::error_handler_t::replace);
  }
  if (!args.is_object()) return std::nullopt;
  return args.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace

void ToolCallSplit::append(ToolCallSplit other) {
  content += other.content;
  for (ToolCall& c : other.calls) calls.push_back(std::move(c));
}

Expected<ToolCallFormat> parse_tool_call_format(std::string_view name) {
  if (name == "none") return ToolCallFormat::kNone;
  if (name == "hermes" || name == "qwen3" || name == "qwen2.5") return ToolCallFormat::kHermes;
  if (name == "llama3_json") return ToolCallFormat::kLlama3Json;
  if (name == "deepseek_v3") return ToolCallFormat::kDeepSeekV3;
  return error(StatusCode::kInvalidArgument,
               "unknown tool-call parser '%.*s' (use auto, none, hermes, llama3_json or "
               "deepseek_v3)",
               static_cast<int>(name.size()), name.data());
}

std::string_view tool_call_format_name(ToolCallFormat format) {
  switch (format) {
    case ToolCallFormat::kHermes:
      return "hermes";
    case ToolCallFormat::kLlama3Json:
      return "llama3_json";
    case ToolCallFormat::kDeepSeekV3:
      return "deepseek_v3";
    case ToolCallFormat::kNone:
      break;
  }
  return "none";
}

ToolCallFormat detect_tool_call_format(std::string_view src) {
  if (src.find(kHermesStart) != std::string_view::npos) return ToolCallFormat::kHermes;
  if (src.find(kDeepSeekCallsBegin) != std::string_view::npos) return ToolCallFormat::kDeepSeekV3;
  if (src.find(kPythonTag) != std::string_view::npos ||
      src.find("Environment: ipython") != std::string_view::npos)
    return ToolCallFormat::kLlama3Json;
  return ToolCallFormat::kNone;
}

ToolCallParser::ToolCallParser(ToolCallFormat format, std::vector<std::string> functions)
    : format_(format), functions_(std::move(functions)), state_(State::kText) {
  if (format_ == ToolCallFormat::kHermes) {
    start_ = kHermesStart;
    end_ = kHermesEnd;
  } else if (format_ == ToolCallFormat::kDeepSeekV3) {
    start_ = kDeepSeekCallsBegin;
    end_ = kDeepSeekCallsEnd;
  } else if (format_ == ToolCallFormat::kNone) {
    state_ = State::kPlainText;
  }
}

bool ToolCallParser::allowed(const std::string& name) const {
  return std::find(functions_.begin(), functions_.end(), name) != functions_.end();
}

void ToolCallParser::release_text(std::string_view text, ToolCallSplit& out) {
  if (text.empty()) return;
  if (hold_space_) {
    held_space_ += text;
    if (all_space(held_space_)) return;
    text = held_space_;
    hold_space_ = false;
    out.content += text;
    held_space_.clear();
    return;
  }
  out.content += text;
}

bool ToolCallParser::read_call_object(std::string_view json_text,
                                      std::vector<ToolCall>* calls) const {
  Json j = Json::parse(json_text, nullptr, false);
  if (j.is_discarded()) return false;
  std::vector<Json> objects;
  if (j.is_array()) {
    if (j.empty()) return false;
    objects.assign(j.begin(), j.end());
  } else {
    objects.push_back(std::move(j));
  }
  for (const Json& o : objects) {
    if (!o.is_object()) return false;
    auto name = o.find("name");
    if (name == o.end() || !name->is_string() || !allowed(name->get<std::string>())) return false;
    auto args = o.find("arguments");
    if (args == o.end()) args = o.find("parameters");
    std::optional<std::string> arguments =
        args == o.end() ? std::optional<std::string>("{}") : arguments_text(*args);
    if (!arguments) return false;
    calls->push_back({.name = name->get<std::string>(), .arguments = std::move(*arguments)});
  }
  return true;
}

bool ToolCallParser::parse_block(std::string_view body, std::vector<ToolCall>* calls) const {
  std::vector<ToolCall> found;
  if (format_ == ToolCallFormat::kHermes) {
    if (!read_call_object(trim(body), &found)) return false;
  } else {
    // <｜tool▁call▁begin｜>HEAD<｜tool▁sep｜>REST<｜tool▁call▁end｜>, repeated.
    std::string_view rest = body;
    while (!trim(rest).empty()) {
      rest = trim(rest);
      if (!starts_with(rest, kDeepSeekCallBegin)) return false;
      rest.remove_prefix(kDeepSeekCallBegin.size());
      size_t end = find_outside_strings(rest, kDeepSeekCallEnd);
      std::string_view call = rest.substr(0, end);  // unterminated: the rest
      rest = end == std::string_view::npos ? std::string_view()
                                           : rest.substr(end + kDeepSeekCallEnd.size());
      size_t sep = call.find(kDeepSeekSep);
      if (sep == std::string_view::npos) return false;
      std::string_view head = trim(call.substr(0, sep));
      std::string_view tail = call.substr(sep + kDeepSeekSep.size());
      std::string_view name = head, args = tail;
      if (head == "function") {  // V3 / R1: type, then the name on its own line
        size_t nl = tail.find('\n');
        if (nl == std::string_view::npos) return false;
        name = trim(tail.substr(0, nl));
        args = tail.substr(nl + 1);
      }
      Json parsed = Json::parse(strip_fence(args), nullptr, false);
      if (!parsed.is_object() || !allowed(std::string(name))) return false;
      found.push_back({.name = std::string(name),
                       .arguments = parsed.dump(-1, ' ', false, Json::error_handler_t::replace)});
    }
    if (found.empty()) return false;
  }
  for (ToolCall& c : found) calls->push_back(std::move(c));
  return true;
}

bool ToolCallParser::parse_json_calls(std::string_view text, std::vector<ToolCall>* calls) const {
  std::string_view rest = trim(text);
  if (starts_with(rest, kPythonTag)) rest = trim(rest.substr(kPythonTag.size()));
  std::vector<ToolCall> found;
  while (!rest.empty()) {
    if (rest.front() != '{') return false;
    size_t end = json_object_end(rest, 0);
    if (end == std::string_view::npos || !read_call_object(rest.substr(0, end), &found))
      return false;
    rest = trim(rest.substr(end));
    if (!rest.empty()) {
      if (rest.front() != ';') return false;
      rest = trim(rest.substr(1));
    }
  }
  if (found.empty()) return false;
  for (ToolCall& c : found) calls->push_back(std::move(c));
  return true;
}

void ToolCallParser::step(ToolCallSplit& out, bool at_end) {
  for (;;) {
    switch (state_) {
      case State::kPlainText:
        release_text(pending_, out);
        pending_.clear();
        return;
      case State::kJsonCalls:
        if (!at_end) return;
        if (!parse_json_calls(pending_, &out.calls)) release_text(pending_, out);
        pending_.clear();
        return;
      case State::kText: {
        if (format_ == ToolCallFormat::kLlama3Json) {
          // Undecided until the answer's first non-space byte: a call is the whole answer.
          std::string_view s = pending_;
          size_t first = s.find_first_not_of(" \n\t\r");
          if (first == std::string_view::npos) {
            if (!at_end) return;
            state_ = State::kPlainText;
            continue;
          }
          std::string_view head = s.substr(first);
          if (head.front() == '{' || starts_with(head, kPythonTag)) {
            state_ = State::kJsonCalls;
          } else if (!at_end && kPythonTag.substr(0, head.size()) == head) {
            return;  // may still become <|python_tag|>
          } else {
            state_ = State::kPlainText;
          }
          continue;
        }
        size_t pos = pending_.find(start_);
        if (pos == std::string::npos) {
          size_t keep = at_end ? 0 : partial_marker_suffix(pending_, start_);
          release_text(std::string_view(pending_).substr(0, pending_.size() - keep), out);
          pending_.erase(0, pending_.size() - keep);
          return;
        }
        std::string_view before = std::string_view(pending_).substr(0, pos);
        if (hold_space_ && all_space(held_space_ + std::string(before))) {
          // Whitespace before a call is dropped, unless the block turns out malformed.
          block_space_ = held_space_ + std::string(before);
          held_space_.clear();
        } else {
          release_text(before, out);
        }
        pending_.erase(0, pos + start_.size());
        state_ = State::kBlock;
        continue;
      }
      case State::kBlock: {
        size_t pos = find_outside_strings(pending_, end_);
        if (pos == std::string::npos && !at_end) return;
        std::string_view body = std::string_view(pending_).substr(0, pos);
        if (parse_block(body, &out.calls)) {
          hold_space_ = true;
          held_space_.clear();
        } else {
          // Malformed: the block's text, markers and the whitespace before it included, is
          // content.
          std::string literal = block_space_ + start_ + std::string(body);
          if (pos != std::string::npos) literal += end_;
          hold_space_ = false;
          release_text(literal, out);
        }
        block_space_.clear();
        pending_.erase(0, pos == std::string::npos ? pending_.size() : pos + end_.size());
        state_ = State::kText;
        if (pos == std::string::npos) return;
        continue;
      }
    }
  }
}

ToolCallSplit ToolCallParser::feed(std::string_view text) {
  ToolCallSplit out;
  pending_ += text;
  step(out, false);
  return out;
}

ToolCallSplit ToolCallParser::finish() {
  ToolCallSplit out;
  step(out, true);
  held_space_.clear();  // whitespace after the last call
  return out;
}

ToolCallSplit ToolCallParser::parse(std::string_view text, ToolCallFormat format,
                                    std::vector<std::string> functions) {
  ToolCallParser p(format, std::move(functions));
  ToolCallSplit out = p.feed(text);
  out.append(p.finish());
  return out;
}

}  // namespace ponder::text
