#include "coordinator/model_text.h"

#include <filesystem>
#include <regex>
#include <span>

#include "common/check.h"

namespace ponder::coordinator {

void ModelText::use_chat_template(text::ChatTemplate tmpl) {
  const std::string& source = tmpl.tools_source();
  tool_call_format = text::detect_tool_call_format(source);
  static const std::regex kArgumentsTojson(R"(arguments\s*\|\s*tojson)");
  tool_arguments_as_objects = std::regex_search(source, kArgumentsTojson);
  chat_template = std::move(tmpl);
}

Expected<ModelText> ModelText::load(const std::string& model_dir) {
  if (!std::filesystem::exists(std::filesystem::path(model_dir) / "tokenizer.json"))
    return error(StatusCode::kNotFound, "%s has no tokenizer.json", model_dir.c_str());
  PONDER_ASSIGN_OR_RETURN(text::Tokenizer tokenizer, text::Tokenizer::load(model_dir));
  ModelText m{.model_dir = model_dir, .tokenizer = std::move(tokenizer)};
  auto tmpl = text::ChatTemplate::load(model_dir);
  if (tmpl) {
    m.use_chat_template(std::move(*tmpl));
  } else if (tmpl.error().code() != StatusCode::kNotFound) {
    return tl::unexpected(tmpl.error());
  }
  auto open = m.tokenizer.token_id("<think>"), close = m.tokenizer.token_id("</think>");
  if (open && close) {
    m.reasoning = text::ReasoningConfig{};
    m.think_end = {*close};
    m.wait_tokens = m.tokenizer.encode("\nWait");
  }
  return m;
}

worker::EngineOptions ModelText::engine_options() const {
  worker::EngineOptions e;
  e.think_end = think_end;
  e.wait_tokens = wait_tokens;
  text::Tokenizer tok = tokenizer;
  e.token_bytes = [tok](int32_t t) { return tok.decode(std::span<const int32_t>(&t, 1)); };
  return e;
}

}  // namespace ponder::coordinator
