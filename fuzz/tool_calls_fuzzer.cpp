// Fuzzes ToolCallParser (coordinator/text/tool_call_parser.cpp): a model's answer is text an
// attacker can steer (prompt injection), and every call in it is parsed as JSON; and the shape
// tool_choice "required" enforces (worker/engine/output_constraint.cpp) against it.
//
// Input: one byte choosing the format (Hermes, Llama-3 JSON, DeepSeek-V3), one byte seeding where
// the text is cut, then the answer. Invariants: fed in pieces, the parser gives exactly what the
// one-shot parse gives — content and calls — and every call names an offered function and
// carries a JSON object; an answer the constraint accepts whole is exactly one call to an offered
// function, with the schema's required key, and no content.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/api/engine_request.h"
#include "coordinator/text/tool_call_parser.h"
#include "worker/engine/output_constraint.h"

namespace {

using ponder::text::ToolCallFormat;
using ponder::text::ToolCallParser;
using ponder::text::ToolCallSplit;

const std::vector<std::string>& functions() {
  static const std::vector<std::string> f = {"get_weather", "search", "f"};
  return f;
}

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  constexpr ToolCallFormat kFormats[] = {ToolCallFormat::kHermes, ToolCallFormat::kLlama3Json,
                                         ToolCallFormat::kDeepSeekV3};
  const ToolCallFormat format = kFormats[data[0] % 3];
  uint32_t state = data[1] * 2654435761u + 1;
  const std::string_view text(reinterpret_cast<const char*>(data + 2), size - 2);

  const ToolCallSplit whole = ToolCallParser::parse(text, format, functions());
  for (const auto& call : whole.calls) {
    check(std::find(functions().begin(), functions().end(), call.name) != functions().end());
    check(nlohmann::json::parse(call.arguments, nullptr, false).is_object());
  }
  ToolCallParser p(format, functions());
  ToolCallSplit pieces;
  for (size_t at = 0; at < text.size();) {
    state = state * 1103515245u + 12345u;
    const size_t n = std::min<size_t>(text.size() - at, 1 + (state >> 16) % 7);
    pieces.append(p.feed(text.substr(at, n)));
    at += n;
  }
  pieces.append(p.finish());

  // get_weather requires "city" (a string); search takes anything; f takes nothing.
  static const auto tools = nlohmann::ordered_json::parse(R"([
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
      "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}}, "required": ["city"]}}},
    {"type": "function", "function": {"name": "search"}},
    {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}])");
  auto constraint = ponder::coordinator::api::tool_call_constraint(format, functions(), tools);
  check(constraint.has_value() && constraint->validate().ok() && constraint->compile().ok());
  ponder::worker::ConstraintMatcher m(&*constraint);
  if (m.feed(text) && m.complete()) {
    check(whole.calls.size() == 1 && whole.content.empty());
    if (whole.calls[0].name == "get_weather") {
      const auto args = nlohmann::json::parse(whole.calls[0].arguments);
      check(args.contains("city") && args["city"].is_string());
    }
    if (whole.calls[0].name == "f") check(whole.calls[0].arguments == "{}");
  }
  check(pieces.content == whole.content);
  check(pieces.calls.size() == whole.calls.size());
  for (size_t i = 0; i < whole.calls.size(); ++i) {
    check(pieces.calls[i].name == whole.calls[i].name);
    check(pieces.calls[i].arguments == whole.calls[i].arguments);
  }
  return 0;
}
