// Chat template rendering (with the null-content fallback) and prompt tokenization.
#include "coordinator/api/prompt.h"

#include "common/strings.h"

namespace ponder::coordinator::api {

using Json = nlohmann::ordered_json;

namespace {

bool opens_reasoning(const ModelText& model, std::string_view prompt) {
  return model.reasoning && text::prompt_opens_reasoning(prompt, *model.reasoning);
}

// OpenAI clients send a past call's arguments as a JSON string; a template that prints them with
// tojson gets the object, as transformers' chat templates expect (ModelText says which).
ApiResult<Json> arguments_as_objects(const Json& messages) {
  Json out = messages;
  for (size_t i = 0; i < out.size(); ++i) {
    Json& m = out[i];
    if (!m.is_object() || !m.contains("tool_calls") || !m["tool_calls"].is_array()) continue;
    for (size_t j = 0; j < m["tool_calls"].size(); ++j) {
      Json& call = m["tool_calls"][j];
      if (!call.is_object() || !call.contains("function") || !call["function"].is_object())
        continue;
      Json& fn = call["function"];
      if (!fn.contains("arguments") || !fn["arguments"].is_string()) continue;
      Json parsed = Json::parse(fn["arguments"].get<std::string>(), nullptr, false);
      if (!parsed.is_object()) {
        const std::string param =
            strformat("messages[%zu].tool_calls[%zu].function.arguments", i, j);
        return tl::unexpected(
            invalid_value(param, "'" + param + "' must be a JSON object (as a string)"));
      }
      fn["arguments"] = std::move(parsed);
    }
  }
  return out;
}

ApiResult<PreparedPrompt> prepare_chat(const CompletionRequest& r, const ModelText& model) {
  if (!model.chat_template)
    return tl::unexpected(
        ApiError{.message = "This model has no chat template; use /v1/completions",
                 .param = "messages",
                 .code = "chat_template_missing"});
  const text::ChatTemplate& tmpl = *model.chat_template;
  ApiResult<Json> converted = model.tool_arguments_as_objects ? arguments_as_objects(r.messages)
                                                              : ApiResult<Json>(r.messages);
  if (!converted) return tl::unexpected(converted.error());
  const Json& given = *converted;
  Expected<std::string> rendered =
      tmpl.render(given, r.add_generation_prompt, r.chat_template_kwargs, r.tools);
  if (!rendered) {
    bool has_null = false;
    Json messages = given;
    for (Json& m : messages)
      if (m.contains("content") && m["content"].is_null()) {
        m["content"] = "";
        has_null = true;
      }
    if (has_null) {
      Expected<std::string> retry =
          tmpl.render(messages, r.add_generation_prompt, r.chat_template_kwargs, r.tools);
      if (retry) rendered = std::move(retry);
    }
  }
  if (!rendered)
    return tl::unexpected(ApiError{
        .message =
            "The chat template could not render these messages: " + rendered.error().message(),
        .param = "messages",
        .code = "chat_template_error"});
  PreparedPrompt p;
  model.tokenizer.encode(*rendered, &p.ids);
  p.opens_reasoning = opens_reasoning(model, *rendered);
  if (p.ids.empty())
    return tl::unexpected(invalid_value("messages", "The rendered prompt is empty"));
  return p;
}

ApiResult<PreparedPrompt> prepare_completion(const PromptInput& input, size_t index, size_t count,
                                             const ModelText& model) {
  const std::string param = count > 1 ? strformat("prompt[%zu]", index) : "prompt";
  PreparedPrompt p;
  if (const auto* ids = std::get_if<std::vector<int32_t>>(&input)) {
    p.ids = *ids;
    if (model.reasoning) p.opens_reasoning = opens_reasoning(model, model.tokenizer.decode(p.ids));
  } else {
    const std::string& text = std::get<std::string>(input);
    const text::Tokenizer& tok = model.tokenizer;
    if (tok.add_bos_token() && tok.bos_token()) p.ids.push_back(tok.bos_token()->id);
    tok.encode(text, &p.ids);
    p.opens_reasoning = opens_reasoning(model, text);
  }
  if (p.ids.empty())
    return tl::unexpected(invalid_value(param, "'" + param + "' is empty (no tokens)"));
  return p;
}

}  // namespace

ApiResult<std::vector<PreparedPrompt>> prepare_prompts(const CompletionRequest& r,
                                                       const ModelText& model) {
  std::vector<PreparedPrompt> out;
  if (r.endpoint == Endpoint::kChatCompletions) {
    auto p = prepare_chat(r, model);
    if (!p) return tl::unexpected(p.error());
    out.push_back(std::move(*p));
    return out;
  }
  for (size_t i = 0; i < r.prompts.size(); ++i) {
    auto p = prepare_completion(r.prompts[i], i, r.prompts.size(), model);
    if (!p) return tl::unexpected(p.error());
    out.push_back(std::move(*p));
  }
  return out;
}

}  // namespace ponder::coordinator::api
