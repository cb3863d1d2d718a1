// Fuzzes chat templates: ChatTemplate::from_config (coordinator/text/chat_template.cpp) parses the
// template with the Jinja engine (coordinator/text/jinja/: lexer, parser, scopes), then renders a
// fixed conversation — system, user, an assistant turn with reasoning and a tool call, the tool's
// answer, user — with and without the generation prompt and tools, and with the variables of
// tests/data/chat_templates/jinja_cases.json as extra kwargs (so its templates find theirs).
//
// Input: the template source.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "coordinator/text/chat_template.h"

namespace {

using Json = nlohmann::ordered_json;

const Json& messages() {
  static const Json m = Json::parse(R"([
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is 2+2? <b>&'\"</b>"},
    {"role": "assistant", "content": null, "reasoning_content": "Add them.",
     "tool_calls": [{"id": "call_1", "type": "function",
                     "function": {"name": "add", "arguments": "{\"a\": 2, \"b\": 2}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "4"},
    {"role": "assistant", "content": "4", "thinking": "The tool said 4."},
    {"role": "user", "content": "héllo – 中文 😀"}
  ])");
  return m;
}

const Json& tools() {
  static const Json t = Json::parse(R"([{"type": "function", "function": {"name": "add",
      "description": "Adds two integers", "parameters": {"type": "object",
      "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
      "required": ["a", "b"]}}}])");
  return t;
}

// jinja_cases.json's variables (msgs, tool, n, f, s, ...) and a transformers-style flag.
const Json& kwargs() {
  static const Json k = Json::parse(R"({
    "msgs": [{"role": "system", "content": "Be brief."},
             {"role": "user", "content": "Hi <there> & 'you'"},
             {"role": "assistant", "content": "Hello!", "tool_calls": null}],
    "tool": {"type": "function", "function": {"name": "get_weather",
             "description": "Weather for a city, e.g. \"Zürich\" <b>now</b> & later",
             "parameters": {"type": "object", "properties": {"city": {"type": "string"},
             "days": {"type": "integer", "minimum": 1}}, "required": ["city"]}}},
    "n": 7, "f": 2.5, "s": "  Hello World  ", "e": "", "xs": [3, 1, 2],
    "words": ["b", "A", "a", "c"], "d": {"b": 1, "a": [1, 2], "c": null},
    "uni": "héllo wörld – 中文 😀", "t": true, "nil": null, "big": 12345678901234,
    "enable_thinking": true
  })");
  return k;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Json config = Json::object();
  config["chat_template"] = std::string(reinterpret_cast<const char*>(data), size);
  config["bos_token"] = "<|begin_of_text|>";
  config["eos_token"] = {{"content", "<|im_end|>"}, {"special", true}};
  auto tmpl = ponder::text::ChatTemplate::from_config(config, "fuzz");
  if (!tmpl) return 0;
  (void)tmpl->render(messages(), /*add_generation_prompt=*/true, kwargs(), tools());
  (void)tmpl->render(messages(), /*add_generation_prompt=*/false, kwargs());
  return 0;
}
