// ChatTemplate: a model's chat template (Jinja, from tokenizer_config.json) rendered into a prompt
// exactly as transformers renders it.
//
// transformers' environment: ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
// with loop controls, its own `tojson`, `raise_exception` and `strftime_now`, the special tokens
// (bos_token, eos_token, ...) as variables, and `reasoning_content` aliased from `thinking` /
// `reasoning` in messages. Output matches Python byte for byte on tests/data/chat_templates/.
//
// Messages are passed to the template as given: a null `content` stays None (DeepSeek-V3's
// template renders tool calls only when content is none; Qwen3's needs a string there), so the
// API layer decides how OpenAI-style `"content": null` reaches a given model.
//
// Thread-safety: immutable after load(); render() may be called from many threads at once.
#pragma once

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "coordinator/text/jinja/template.h"

namespace ponder::text {

class ChatTemplate {
 public:
  // Reads the chat template and special tokens of a Hugging Face model folder: the template from
  // chat_template.jinja if present, else `chat_template` in tokenizer_config.json (a string, or a
  // list of {name, template} where "default" is used and "tool_use" is preferred when tools are
  // given). kNotFound when the folder has no chat template; kInvalidArgument when the template or
  // config is malformed (the message names the file, the key, and the template line/column).
  static Expected<ChatTemplate> load(const std::filesystem::path& model_dir);

  // From a parsed tokenizer_config.json; `origin` names it in error messages.
  static Expected<ChatTemplate> from_config(const nlohmann::ordered_json& tokenizer_config,
                                            std::string_view origin = "tokenizer_config.json");

  // Renders a conversation into the prompt text.
  //   messages: [{role, content, [tool_calls], [reasoning_content], ...}, ...]
  //   extra_kwargs: object of extra template variables (e.g. {"enable_thinking": false});
  //                 they override the special tokens, as in transformers.
  //   tools: list of tool schemas, or null.
  // kInvalidArgument for malformed input, template errors and raise_exception() from the template
  // (the message says which).
  Expected<std::string> render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                               const nlohmann::ordered_json& extra_kwargs = nullptr,
                               const nlohmann::ordered_json& tools = nullptr) const;
  // Same, from nlohmann::json (objects iterate in sorted key order, so prefer ordered_json where
  // key order reaches the prompt, e.g. tool schemas printed with tojson).
  Expected<std::string> render(const nlohmann::json& messages, bool add_generation_prompt,
                               const nlohmann::json& extra_kwargs = nullptr,
                               const nlohmann::json& tools = nullptr) const;

  // Special tokens as strings; empty when the model defines none.
  const std::string& bos_token() const { return bos_token_; }
  const std::string& eos_token() const { return eos_token_; }
  // Source of the template used when no tools are given.
  const std::string& source() const;
  // Source of the template used when tools are given ("tool_use" when there is one).
  const std::string& tools_source() const;
  bool has_tool_use_template() const;

 private:
  struct Named {
    std::string name;
    std::string source;
    std::shared_ptr<const jinja::Template> compiled;
  };

  ChatTemplate() = default;
  static Expected<ChatTemplate> build(std::vector<std::pair<std::string, std::string>> templates,
                                      const nlohmann::ordered_json& config,
                                      std::string_view origin);
  Expected<std::string> render_values(const jinja::Value& messages, bool add_generation_prompt,
                                      const jinja::Value& extra_kwargs,
                                      const jinja::Value& tools) const;
  const Named& pick(bool has_tools) const;

  std::vector<Named> templates_;  // "default" first
  std::string origin_;
  std::string bos_token_;
  std::string eos_token_;
  jinja::Dict special_tokens_;  // bos_token, eos_token, unk_token, ... that are set
};

}  // namespace ponder::text
