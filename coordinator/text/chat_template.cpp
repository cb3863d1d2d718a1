// ChatTemplate: loading a model's chat template and rendering conversations like transformers.
#include "coordinator/text/chat_template.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "common/check.h"
#include "common/strings.h"

namespace ponder::text {
namespace {

using jinja::Dict;
using jinja::Value;

constexpr std::string_view kSpecialTokenKeys[] = {
    "bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"};
// Variables transformers passes itself; extra kwargs may not repeat them.
constexpr std::string_view kReservedVariables[] = {"messages", "tools", "documents",
                                                   "add_generation_prompt"};
// Names a message's reasoning travels under; the first is what templates read.
constexpr std::string_view kReasoningFields[] = {"reasoning_content", "thinking", "reasoning"};

Expected<std::string> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return error(StatusCode::kNotFound, "cannot open %s", path.c_str());
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// A special token is a string, or an AddedToken object {"content": "...", ...}, or null.
Expected<std::string> token_string(const nlohmann::ordered_json& config, std::string_view key,
                                   std::string_view origin) {
  auto it = config.find(std::string(key));
  if (it == config.end() || it->is_null()) return std::string();
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    auto content = it->find("content");
    if (content != it->end() && content->is_string()) return content->get<std::string>();
  }
  return error(StatusCode::kInvalidArgument,
               "%.*s: '%.*s' must be a string or an object with a string 'content'",
               static_cast<int>(origin.size()), origin.data(), static_cast<int>(key.size()),
               key.data());
}

// transformers' _alias_reasoning_fields: {"thinking": r, **message, "reasoning_content": r}.
Value alias_reasoning(const Value& message) {
  const Value* reasoning = nullptr;
  for (std::string_view field : kReasoningFields) {
    const Value* v = message.as_dict().find(field);
    if (v != nullptr && !v->is_none()) {
      reasoning = v;
      break;
    }
  }
  if (reasoning == nullptr) return message;
  Dict aliased;
  aliased.set("thinking", *reasoning);
  for (const auto& [key, value] : message.as_dict().items()) aliased.set(key, value);
  aliased.set("reasoning_content", *reasoning);
  return Value::dict(std::move(aliased));
}

jinja::TemplateOptions chat_options() {
  jinja::TemplateOptions options;
  options.trim_blocks = true;
  options.lstrip_blocks = true;
  options.tojson = jinja::TojsonStyle::kTransformers;
  return options;
}

}  // namespace

Expected<ChatTemplate> ChatTemplate::load(const std::filesystem::path& model_dir) {
  std::filesystem::path config_path = model_dir / "tokenizer_config.json";
  nlohmann::ordered_json config = nlohmann::ordered_json::object();
  std::string origin = config_path.string();
  if (std::filesystem::exists(config_path)) {
    PONDER_ASSIGN_OR_RETURN(std::string text, read_file(config_path));
    config = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (config.is_discarded() || !config.is_object()) {
      return error(StatusCode::kInvalidArgument, "%s: not a JSON object", origin.c_str());
    }
  }
  // Newer checkpoints keep templates in files, which take precedence (as in transformers).
  std::vector<std::pair<std::string, std::string>> templates;
  std::filesystem::path jinja_path = model_dir / "chat_template.jinja";
  if (std::filesystem::exists(jinja_path)) {
    PONDER_ASSIGN_OR_RETURN(std::string text, read_file(jinja_path));
    templates.emplace_back("default", std::move(text));
    origin = jinja_path.string();
  }
  std::filesystem::path extra_dir = model_dir / "additional_chat_templates";
  if (std::filesystem::is_directory(extra_dir)) {
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(extra_dir)) {
      if (entry.path().extension() == ".jinja") files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      PONDER_ASSIGN_OR_RETURN(std::string text, read_file(file));
      templates.emplace_back(file.stem().string(), std::move(text));
    }
  }
  if (templates.empty() && !std::filesystem::exists(config_path)) {
    return error(StatusCode::kNotFound, "%s: no tokenizer_config.json or chat_template.jinja",
                 model_dir.c_str());
  }
  if (!templates.empty()) return build(std::move(templates), config, origin);
  return from_config(config, origin);
}

Expected<ChatTemplate> ChatTemplate::from_config(const nlohmann::ordered_json& config,
                                                 std::string_view origin) {
  std::string where(origin);
  if (!config.is_object()) {
    return error(StatusCode::kInvalidArgument, "%s: not a JSON object", where.c_str());
  }
  auto it = config.find("chat_template");
  if (it == config.end() || it->is_null()) {
    return error(StatusCode::kNotFound, "%s: no 'chat_template'", where.c_str());
  }
  std::vector<std::pair<std::string, std::string>> templates;
  if (it->is_string()) {
    templates.emplace_back("default", it->get<std::string>());
  } else if (it->is_array()) {
    for (const auto& entry : *it) {
      auto name = entry.find("name");
      auto text = entry.find("template");
      if (!entry.is_object() || name == entry.end() || !name->is_string() || text == entry.end() ||
          !text->is_string()) {
        return error(StatusCode::kInvalidArgument,
                     "%s: 'chat_template' entries must be {\"name\": string, \"template\": string}",
                     where.c_str());
      }
      templates.emplace_back(name->get<std::string>(), text->get<std::string>());
    }
  } else {
    return error(StatusCode::kInvalidArgument,
                 "%s: 'chat_template' must be a string or a list of {name, template}",
                 where.c_str());
  }
  return build(std::move(templates), config, origin);
}

Expected<ChatTemplate> ChatTemplate::build(
    std::vector<std::pair<std::string, std::string>> templates,
    const nlohmann::ordered_json& config, std::string_view origin) {
  ChatTemplate result;
  result.origin_ = std::string(origin);
  std::stable_partition(templates.begin(), templates.end(),
                        [](const auto& t) { return t.first == "default"; });
  if (templates.empty() || templates.front().first != "default") {
    return error(StatusCode::kInvalidArgument, "%s: no chat template named 'default'",
                 result.origin_.c_str());
  }
  for (auto& [name, source] : templates) {
    Expected<jinja::Template> compiled = jinja::Template::parse(source, chat_options());
    if (!compiled) {
      return tl::unexpected(compiled.error().with_context(
          strformat("%s: chat template '%s'", result.origin_.c_str(), name.c_str())));
    }
    result.templates_.push_back(Named{
        name, std::move(source), std::make_shared<const jinja::Template>(std::move(*compiled))});
  }
  for (std::string_view key : kSpecialTokenKeys) {
    PONDER_ASSIGN_OR_RETURN(std::string token, token_string(config, key, origin));
    if (key == "bos_token") result.bos_token_ = token;
    if (key == "eos_token") result.eos_token_ = token;
    auto it = config.find(std::string(key));
    if (it != config.end() && !it->is_null()) result.special_tokens_.set(key, Value::string(token));
  }
  return result;
}

const std::string& ChatTemplate::source() const { return templates_.front().source; }

const std::string& ChatTemplate::tools_source() const { return pick(true).source; }

bool ChatTemplate::has_tool_use_template() const {
  return std::any_of(templates_.begin(), templates_.end(),
                     [](const Named& t) { return t.name == "tool_use"; });
}

const ChatTemplate::Named& ChatTemplate::pick(bool has_tools) const {
  if (has_tools) {
    for (const Named& t : templates_) {
      if (t.name == "tool_use") return t;
    }
  }
  return templates_.front();
}

Expected<std::string> ChatTemplate::render(const nlohmann::ordered_json& messages,
                                           bool add_generation_prompt,
                                           const nlohmann::ordered_json& extra_kwargs,
                                           const nlohmann::ordered_json& tools) const {
  return render_values(Value::from_json(messages), add_generation_prompt,
                       Value::from_json(extra_kwargs), Value::from_json(tools));
}

Expected<std::string> ChatTemplate::render(const nlohmann::json& messages,
                                           bool add_generation_prompt,
                                           const nlohmann::json& extra_kwargs,
                                           const nlohmann::json& tools) const {
  return render_values(Value::from_json(messages), add_generation_prompt,
                       Value::from_json(extra_kwargs), Value::from_json(tools));
}

Expected<std::string> ChatTemplate::render_values(const Value& messages, bool add_generation_prompt,
                                                  const Value& extra_kwargs,
                                                  const Value& tools) const {
  if (!messages.is_list()) {
    return error(StatusCode::kInvalidArgument, "messages must be a list of objects, got %s",
                 std::string(messages.type_name()).c_str());
  }
  jinja::ValueList chat;
  for (size_t i = 0; i < messages.as_list().size(); ++i) {
    const Value& message = messages.as_list()[i];
    if (!message.is_dict()) {
      return error(StatusCode::kInvalidArgument, "messages[%zu] must be an object, got %s", i,
                   std::string(message.type_name()).c_str());
    }
    chat.push_back(alias_reasoning(message));
  }
  if (!extra_kwargs.is_none() && !extra_kwargs.is_dict()) {
    return error(StatusCode::kInvalidArgument, "chat template kwargs must be an object, got %s",
                 std::string(extra_kwargs.type_name()).c_str());
  }
  if (!tools.is_none() && !tools.is_list()) {
    return error(StatusCode::kInvalidArgument, "tools must be a list, got %s",
                 std::string(tools.type_name()).c_str());
  }
  Dict variables = special_tokens_;
  for (const auto& [key, value] : extra_kwargs.as_dict().items()) {
    std::string name = key.str();
    for (std::string_view reserved : kReservedVariables) {
      if (name == reserved) {
        return error(StatusCode::kInvalidArgument,
                     "chat template kwarg '%s' is reserved; pass it as its own argument",
                     name.c_str());
      }
    }
    variables.set(name, value);
  }
  variables.set("messages", Value::list(std::move(chat)));
  variables.set("tools", tools);
  variables.set("documents", Value::none());
  variables.set("add_generation_prompt", Value::boolean(add_generation_prompt));
  const Named& tmpl = pick(!tools.is_none());
  Expected<std::string> out = tmpl.compiled->render(Value::dict(std::move(variables)));
  if (!out) {
    return tl::unexpected(out.error().with_context(
        strformat("chat template '%s' of %s", tmpl.name.c_str(), origin_.c_str())));
  }
  return out;
}

}  // namespace ponder::text
