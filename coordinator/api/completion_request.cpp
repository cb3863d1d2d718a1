// Parsing and validation of completion request bodies (chat and legacy completions).
#include "coordinator/api/completion_request.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "common/strings.h"
#include "coordinator/api/field_reader.h"

namespace ponder::coordinator::api {

using Json = nlohmann::ordered_json;

namespace {

// A token id from a logit_bias key ("1234").
std::optional<int64_t> parse_token_key(const std::string& key) {
  if (key.empty() || key.size() > 12) return std::nullopt;
  char* end = nullptr;
  long long v = std::strtoll(key.c_str(), &end, 10);
  if (end != key.c_str() + key.size()) return std::nullopt;
  return v;
}

bool token_in_vocab(int64_t t, const RequestLimits& limits) {
  return t >= 0 && (limits.vocab_size <= 0 || t < limits.vocab_size);
}

std::string vocab_range(const RequestLimits& limits) {
  return limits.vocab_size > 0 ? strformat("[0, %lld)", (long long)limits.vocab_size) : ">= 0";
}

// messages[i].content as the chat template sees it: a string, or null (assistant turns only).
void read_content(FieldReader& f, const Json& message, size_t i, Json* out) {
  const std::string param = strformat("messages[%zu].content", i);
  auto it = message.find("content");
  const bool is_assistant = message.value("role", "") == "assistant";
  if (it == message.end() || it->is_null()) {
    if (is_assistant) {
      *out = nullptr;
    } else {
      f.fail(invalid_value(param, strformat("'%s' is required for this role", param.c_str())));
    }
    return;
  }
  if (it->is_string()) {
    *out = *it;
    return;
  }
  if (!it->is_array()) {
    f.fail(invalid_type(param, strformat("Invalid type for '%s': expected a string or an array of "
                                         "content parts, but got %s instead.",
                                         param.c_str(), json_type_phrase(*it).c_str())));
    return;
  }
  // Text parts are joined with newlines (what vLLM does for text-only content).
  std::string text;
  for (size_t j = 0; j < it->size(); ++j) {
    const Json& part = (*it)[j];
    const std::string part_param = strformat("%s[%zu]", param.c_str(), j);
    if (!part.is_object() || !part.contains("type") || !part["type"].is_string()) {
      f.fail(invalid_type(part_param, strformat("'%s' must be an object with a string 'type'",
                                                part_param.c_str())));
      return;
    }
    const std::string type = part["type"].get<std::string>();
    if (type != "text") {
      f.fail(invalid_value(part_param + ".type",
                           strformat("content parts of type '%s' are not supported by this model "
                                     "(only 'text')",
                                     type.c_str())));
      return;
    }
    if (!part.contains("text") || !part["text"].is_string()) {
      f.fail(invalid_type(part_param + ".text",
                          strformat("'%s.text' must be a string", part_param.c_str())));
      return;
    }
    if (j > 0) text += '\n';
    text += part["text"].get<std::string>();
  }
  *out = std::move(text);
}

void read_messages(FieldReader& f, CompletionRequest& r) {
  const Json* m = f.get("messages");
  if (m == nullptr) {
    f.fail({.message = "'messages' is a required property",
            .param = "messages",
            .code = "missing_required_parameter"});
    return;
  }
  if (!m->is_array()) {
    f.fail(invalid_type("messages", "Invalid type for 'messages': expected an array, but got " +
                                        json_type_phrase(*m) + " instead."));
    return;
  }
  f.check(!m->empty(), "messages", "'messages' must contain at least one message");
  r.messages = Json::array();
  for (size_t i = 0; i < m->size() && f.ok(); ++i) {
    const Json& in = (*m)[i];
    const std::string param = strformat("messages[%zu]", i);
    if (!in.is_object()) {
      f.fail(invalid_type(param, strformat("Invalid type for '%s': expected an object, but got %s "
                                           "instead.",
                                           param.c_str(), json_type_phrase(in).c_str())));
      return;
    }
    auto role = in.find("role");
    if (role == in.end() || !role->is_string()) {
      f.fail(
          invalid_value(param + ".role", strformat("'%s.role' must be a string", param.c_str())));
      return;
    }
    std::string role_name = role->get<std::string>();
    if (role_name != "system" && role_name != "developer" && role_name != "user" &&
        role_name != "assistant" && role_name != "tool") {
      f.fail(invalid_value(param + ".role",
                           strformat("'%s.role' must be one of 'system', 'developer', 'user', "
                                     "'assistant', 'tool' (got '%s')",
                                     param.c_str(), role_name.c_str())));
      return;
    }
    Json out = in;  // keeps name, tool_calls, tool_call_id, reasoning_content, ... in order
    if (role_name == "developer") out["role"] = "system";  // chat templates know "system"
    read_content(f, in, i, &out["content"]);
    r.messages.push_back(std::move(out));
  }
}

void read_prompts(FieldReader& f, CompletionRequest& r, const RequestLimits& limits) {
  const Json* p = f.get("prompt");
  if (p == nullptr) {
    f.fail({.message = "'prompt' is a required property",
            .param = "prompt",
            .code = "missing_required_parameter"});
    return;
  }
  auto ids_of = [&](const Json& arr, const std::string& param, std::vector<int32_t>* ids) {
    for (const Json& t : arr) {
      if (!t.is_number_integer()) {
        f.fail(invalid_type(param, "'" + param + "' must hold only integers (token ids)"));
        return;
      }
      const int64_t id = t.get<int64_t>();
      if (!token_in_vocab(id, limits)) {
        f.fail(invalid_value(
            param, strformat("token id %lld in '%s' is outside the vocabulary %s", (long long)id,
                             param.c_str(), vocab_range(limits).c_str())));
        return;
      }
      ids->push_back(static_cast<int32_t>(id));
    }
  };
  if (p->is_string()) {
    r.prompts.emplace_back(p->get<std::string>());
    return;
  }
  if (!p->is_array()) {
    f.fail(invalid_type("prompt",
                        "Invalid type for 'prompt': expected a string, an array of strings, "
                        "an array of token ids or an array of arrays of token ids, but got " +
                            json_type_phrase(*p) + " instead."));
    return;
  }
  if (p->empty()) {
    f.fail(invalid_value("prompt", "'prompt' must not be an empty array"));
    return;
  }
  const Json& first = p->front();
  if (first.is_number_integer()) {  // one prompt as token ids
    std::vector<int32_t> ids;
    ids_of(*p, "prompt", &ids);
    r.prompts.emplace_back(std::move(ids));
    return;
  }
  f.check(static_cast<int64_t>(p->size()) <= limits.max_prompts, "prompt",
          strformat("at most %d prompts per request (got %zu)", limits.max_prompts, p->size()));
  for (size_t i = 0; i < p->size() && f.ok(); ++i) {
    const Json& e = (*p)[i];
    const std::string param = strformat("prompt[%zu]", i);
    if (e.is_string() && first.is_string()) {
      r.prompts.emplace_back(e.get<std::string>());
    } else if (e.is_array() && first.is_array()) {
      if (e.empty()) {
        f.fail(invalid_value(param, "'" + param + "' must not be empty"));
        return;
      }
      std::vector<int32_t> ids;
      ids_of(e, param, &ids);
      r.prompts.emplace_back(std::move(ids));
    } else {
      f.fail(invalid_type(param,
                          "'prompt' must be a string, an array of strings, an array of token "
                          "ids or an array of arrays of token ids (elements of one kind)"));
      return;
    }
  }
}

void read_stop(FieldReader& f, CompletionRequest& r, const RequestLimits& limits) {
  const Json* s = f.get("stop");
  if (s == nullptr || !f.ok()) return;
  if (s->is_string()) {
    r.stop.push_back(s->get<std::string>());
  } else if (s->is_array()) {
    for (const Json& e : *s) {
      if (!e.is_string()) {
        f.fail(invalid_type("stop", "'stop' must be a string or an array of strings"));
        return;
      }
      r.stop.push_back(e.get<std::string>());
    }
  } else {
    f.fail(invalid_type("stop",
                        "Invalid type for 'stop': expected a string or an array of strings, "
                        "but got " +
                            json_type_phrase(*s) + " instead."));
    return;
  }
  f.check(static_cast<int64_t>(r.stop.size()) <= limits.max_stop, "stop",
          strformat("at most %d stop strings (got %zu)", limits.max_stop, r.stop.size()));
  for (const std::string& stop : r.stop)
    f.check(!stop.empty(), "stop", "stop strings must not be empty");
}

void read_stop_token_ids(FieldReader& f, CompletionRequest& r, const RequestLimits& limits) {
  const Json* s = f.get("stop_token_ids");
  if (s == nullptr || !f.ok()) return;
  if (!s->is_array()) {
    f.fail(invalid_type("stop_token_ids", "'stop_token_ids' must be an array of token ids"));
    return;
  }
  for (const Json& e : *s) {
    if (!e.is_number_integer()) {
      f.fail(invalid_type("stop_token_ids", "'stop_token_ids' must be an array of token ids"));
      return;
    }
    const int64_t id = e.get<int64_t>();
    if (!token_in_vocab(id, limits)) {
      f.fail(
          invalid_value("stop_token_ids",
                        strformat("token id %lld in 'stop_token_ids' is outside the vocabulary %s",
                                  (long long)id, vocab_range(limits).c_str())));
      return;
    }
    r.stop_token_ids.push_back(static_cast<int32_t>(id));
  }
}

void read_logit_bias(FieldReader& f, CompletionRequest& r, const RequestLimits& limits) {
  const Json* b = f.get("logit_bias");
  if (b == nullptr || !f.ok()) return;
  if (!b->is_object()) {
    f.fail(invalid_type("logit_bias",
                        "Invalid type for 'logit_bias': expected an object mapping token "
                        "ids to numbers, but got " +
                            json_type_phrase(*b) + " instead."));
    return;
  }
  for (const auto& [key, value] : b->items()) {
    std::optional<int64_t> id = parse_token_key(key);
    if (!id || !token_in_vocab(*id, limits)) {
      f.fail(invalid_value("logit_bias", strformat("logit_bias key '%s' is not a token id in %s",
                                                   key.c_str(), vocab_range(limits).c_str())));
      return;
    }
    if (!value.is_number()) {
      f.fail(
          invalid_type("logit_bias", strformat("logit_bias['%s'] must be a number", key.c_str())));
      return;
    }
    const double bias = value.get<double>();
    if (!(bias >= -100.0 && bias <= 100.0)) {
      f.fail(invalid_value(
          "logit_bias",
          strformat("logit_bias['%s'] must be in [-100, 100] (got %g)", key.c_str(), bias)));
      return;
    }
    r.sampling.logit_bias.emplace_back(static_cast<int32_t>(*id), static_cast<float>(bias));
  }
}

void read_sampling(FieldReader& f, CompletionRequest& r, const RequestLimits& limits) {
  worker::SamplingParams& s = r.sampling;
  if (f.number("temperature", &s.temperature))
    f.check(std::isfinite(s.temperature) && s.temperature >= 0.0f, "temperature",
            strformat("'temperature' must be >= 0 (got %g)", s.temperature));
  if (f.number("top_p", &s.top_p))
    f.check(s.top_p > 0.0f && s.top_p <= 1.0f, "top_p",
            strformat("'top_p' must be in (0, 1] (got %g)", s.top_p));
  int32_t top_k = 0;
  if (f.integer("top_k", &top_k)) {
    f.check(top_k >= -1, "top_k",
            strformat("'top_k' must be -1 or 0 (all tokens) or >= 1 (got %d)", top_k));
    s.top_k = top_k < 0 ? 0 : top_k;
  }
  if (f.number("min_p", &s.min_p))
    f.check(s.min_p >= 0.0f && s.min_p <= 1.0f, "min_p",
            strformat("'min_p' must be in [0, 1] (got %g)", s.min_p));
  if (f.number("presence_penalty", &s.presence_penalty))
    f.check(s.presence_penalty >= -2.0f && s.presence_penalty <= 2.0f, "presence_penalty",
            strformat("'presence_penalty' must be in [-2, 2] (got %g)", s.presence_penalty));
  if (f.number("frequency_penalty", &s.frequency_penalty))
    f.check(s.frequency_penalty >= -2.0f && s.frequency_penalty <= 2.0f, "frequency_penalty",
            strformat("'frequency_penalty' must be in [-2, 2] (got %g)", s.frequency_penalty));
  if (f.number("repetition_penalty", &s.repetition_penalty))
    f.check(std::isfinite(s.repetition_penalty) && s.repetition_penalty > 0.0f,
            "repetition_penalty",
            strformat("'repetition_penalty' must be > 0 (got %g)", s.repetition_penalty));
  int64_t seed = 0;
  if (f.integer("seed", &seed)) {
    s.seed = static_cast<uint64_t>(seed);
    r.has_seed = true;
  }
  read_logit_bias(f, r, limits);
}

void read_logprobs(FieldReader& f, CompletionRequest& r, Endpoint endpoint) {
  if (endpoint == Endpoint::kChatCompletions) {
    f.boolean("logprobs", &r.logprobs);
    if (f.integer("top_logprobs", &r.top_logprobs)) {
      f.check(r.top_logprobs >= 0 && r.top_logprobs <= 20, "top_logprobs",
              strformat("'top_logprobs' must be in [0, 20] (got %d)", r.top_logprobs));
      f.check(r.logprobs || r.top_logprobs == 0, "top_logprobs",
              "'top_logprobs' needs 'logprobs' set to true");
    }
  } else {
    if (f.integer("logprobs", &r.top_logprobs)) {
      r.logprobs = true;
      f.check(r.top_logprobs >= 0 && r.top_logprobs <= 20, "logprobs",
              strformat("'logprobs' must be in [0, 20] (got %d)", r.top_logprobs));
    }
  }
  r.sampling.top_logprobs = r.logprobs ? r.top_logprobs : 0;
}

void read_stream(FieldReader& f, CompletionRequest& r) {
  f.boolean("stream", &r.stream);
  const Json* so = f.get("stream_options");
  if (so == nullptr || !f.ok()) return;
  if (!so->is_object()) {
    f.fail(invalid_type("stream_options", "'stream_options' must be an object"));
    return;
  }
  f.check(r.stream, "stream_options", "'stream_options' is only allowed when 'stream' is true");
  FieldReader sf(*so);
  sf.boolean("include_usage", &r.include_usage);
  if (!sf.ok()) {
    ApiError e = *sf.error();
    e.param = "stream_options." + e.param;
    f.fail(std::move(e));
  }
}

// tools: [{"type": "function", "function": {"name": …, "description": …, "parameters": {…}}}];
// tool_choice: "auto" | "none" | "required" | {"type": "function", "function": {"name": …}}.
void read_tools(FieldReader& f, CompletionRequest& r) {
  if (const Json* tools = f.get("tools"); tools != nullptr && f.ok()) {
    if (!tools->is_array()) return f.fail(invalid_type("tools", "'tools' must be an array"));
    for (size_t i = 0; i < tools->size(); ++i) {
      const Json& t = (*tools)[i];
      const std::string param = strformat("tools[%zu]", i);
      const Json* fn =
          t.is_object() && t.contains("type") && t["type"] == "function" && t.contains("function")
              ? &t["function"]
              : nullptr;
      if (fn == nullptr || !fn->is_object())
        return f.fail(invalid_value(param, "'" + param +
                                               "' must be {\"type\": \"function\", "
                                               "\"function\": {\"name\": …}}"));
      const auto name = fn->find("name");
      if (name == fn->end() || !name->is_string() || name->get<std::string>().empty())
        return f.fail(invalid_value(param + ".function.name",
                                    "'" + param + ".function.name' must be a non-empty string"));
      if (std::find(r.tool_names.begin(), r.tool_names.end(), name->get<std::string>()) !=
          r.tool_names.end())
        return f.fail(invalid_value(param + ".function.name",
                                    "two tools are named '" + name->get<std::string>() + "'"));
      if (const auto params = fn->find("parameters"); params != fn->end() && !params->is_object())
        return f.fail(
            invalid_type(param + ".function.parameters",
                         "'" + param + ".function.parameters' must be a JSON Schema object"));
      r.tool_names.push_back(name->get<std::string>());
    }
    r.tools = *tools;
  }
  if (const Json* choice = f.get("tool_choice"); choice != nullptr && f.ok()) {
    const std::string value = choice->is_string() ? choice->get<std::string>() : "";
    if (value == "none") {
      r.tool_choice = CompletionRequest::ToolChoice::kNone;
      r.tools = nullptr;
      r.tool_names.clear();
    } else if (value == "required") {
      r.tool_choice = CompletionRequest::ToolChoice::kRequired;
    } else if (choice->is_object()) {
      const auto fn = choice->find("function");
      const bool shaped = choice->contains("type") && (*choice)["type"] == "function" &&
                          fn != choice->end() && fn->is_object() && fn->contains("name") &&
                          (*fn)["name"].is_string();
      if (!shaped)
        return f.fail(invalid_value("tool_choice",
                                    "'tool_choice' as an object must be {\"type\": \"function\", "
                                    "\"function\": {\"name\": …}}"));
      r.tool_choice = CompletionRequest::ToolChoice::kFunction;
      r.tool_choice_function = (*fn)["name"].get<std::string>();
      if (std::find(r.tool_names.begin(), r.tool_names.end(), r.tool_choice_function) ==
          r.tool_names.end())
        return f.fail(invalid_value("tool_choice", "tool_choice names '" + r.tool_choice_function +
                                                       "', which is not among the tools"));
    } else if (value != "auto") {
      return f.fail(invalid_value(
          "tool_choice", "'tool_choice' must be \"auto\", \"none\", \"required\" or a function"));
    }
    if (r.forces_tool_call() && r.tool_names.empty())
      return f.fail(
          invalid_value("tool_choice", "tool_choice \"required\" or a function needs tools"));
  }
  f.boolean("parallel_tool_calls", &r.parallel_tool_calls);
}

void read_unsupported(FieldReader& f, Endpoint endpoint, int32_t n) {
  if (const Json* rf = f.get("response_format"); rf != nullptr && f.ok()) {
    // (Json::value() would throw on a "type" that is not a string.)
    const auto type = rf->is_object() ? rf->find("type") : rf->end();
    const bool text = type != rf->end() && type->is_string() && *type == "text";
    f.check(text, "response_format", "only response_format {\"type\": \"text\"} is supported");
  }
  if (endpoint == Endpoint::kCompletions) {
    bool echo = false;
    if (f.boolean("echo", &echo)) f.check(!echo, "echo", "'echo' is not supported");
    std::string suffix;
    if (f.string("suffix", &suffix)) f.check(suffix.empty(), "suffix", "'suffix' is not supported");
    int32_t best_of = 0;
    if (f.integer("best_of", &best_of))
      f.check(best_of == n, "best_of", "'best_of' other than 'n' is not supported");
  }
}

}  // namespace

ApiResult<Json> parse_json_body(std::string_view body) {
  // Copying, converting and printing JSON recurse once per level, so a body of a few MB of "["
  // would overflow the stack of whoever handles it (a chat template's tools, a copied message).
  // Parsing itself does not recurse: bodies nested deeper than kMaxJsonDepth stop here.
  struct TooDeep {};
  auto depth_check = [](int depth, Json::parse_event_t event, Json&) {
    if ((event == Json::parse_event_t::object_start || event == Json::parse_event_t::array_start) &&
        depth >= kMaxJsonDepth)
      throw TooDeep{};
    return true;
  };
  Json j;
  try {
    j = Json::parse(body, depth_check);
  } catch (const Json::exception& e) {
    return tl::unexpected(
        ApiError{.message = std::string("The request body is not valid JSON: ") + e.what(),
                 .code = "invalid_json"});
  } catch (const TooDeep&) {
    return tl::unexpected(ApiError{
        .message = strformat("The request body nests objects and arrays more than %d levels deep",
                             kMaxJsonDepth),
        .code = "invalid_json"});
  }
  if (!j.is_object())
    return tl::unexpected(
        ApiError{.message = "The request body must be a JSON object, got " + json_type_phrase(j),
                 .code = "invalid_json"});
  return j;
}

ApiResult<CompletionRequest> parse_completion_request(Endpoint endpoint, const Json& body,
                                                      const RequestLimits& limits) {
  CompletionRequest r;
  r.endpoint = endpoint;
  r.sampling = limits.sampling_defaults;
  FieldReader f(body);
  f.string("model", &r.model);
  if (endpoint == Endpoint::kChatCompletions) {
    read_messages(f, r);
  } else {
    read_prompts(f, r, limits);
  }

  int64_t max_tokens = 0;
  if (f.integer("max_tokens", &max_tokens)) {
    f.check(max_tokens >= 1, "max_tokens",
            strformat("'max_tokens' must be >= 1 (got %lld)", (long long)max_tokens));
    r.max_tokens = max_tokens;
  }
  if (f.integer("max_completion_tokens", &max_tokens)) {
    f.check(max_tokens >= 1, "max_completion_tokens",
            strformat("'max_completion_tokens' must be >= 1 (got %lld)", (long long)max_tokens));
    r.max_tokens = max_tokens;
  }
  if (f.integer("n", &r.n))
    f.check(r.n >= 1 && r.n <= limits.max_n, "n",
            strformat("'n' must be in [1, %d] (got %d)", limits.max_n, r.n));
  read_sampling(f, r, limits);
  read_stop(f, r, limits);
  read_stop_token_ids(f, r, limits);
  if (f.integer("min_tokens", &r.min_tokens)) {
    f.check(r.min_tokens >= 0, "min_tokens", "'min_tokens' must be >= 0");
    f.check(!r.max_tokens || r.min_tokens <= *r.max_tokens, "min_tokens",
            "'min_tokens' must not exceed 'max_tokens'");
  }
  f.boolean("ignore_eos", &r.ignore_eos);
  f.boolean("include_stop_str_in_output", &r.include_stop_str_in_output);
  f.boolean("skip_special_tokens", &r.skip_special_tokens);
  read_logprobs(f, r, endpoint);
  read_stream(f, r);

  if (f.integer("max_thinking_tokens", &r.max_thinking_tokens))
    f.check(r.max_thinking_tokens >= -1, "max_thinking_tokens",
            "'max_thinking_tokens' must be >= 0 (or -1 for no cap)");
  if (f.integer("min_thinking_tokens", &r.min_thinking_tokens))
    f.check(r.min_thinking_tokens >= 0, "min_thinking_tokens",
            "'min_thinking_tokens' must be >= 0");
  if (f.integer("extend_thinking", &r.extend_thinking))
    f.check(r.extend_thinking >= 0, "extend_thinking", "'extend_thinking' must be >= 0");
  if (r.max_thinking_tokens >= 0)
    f.check(r.min_thinking_tokens <= r.max_thinking_tokens, "min_thinking_tokens",
            "'min_thinking_tokens' must not exceed 'max_thinking_tokens'");

  if (endpoint == Endpoint::kChatCompletions) {
    if (const Json* kw = f.get("chat_template_kwargs"); kw != nullptr && f.ok()) {
      if (kw->is_object()) {
        r.chat_template_kwargs = *kw;
      } else {
        f.fail(invalid_type("chat_template_kwargs", "'chat_template_kwargs' must be an object"));
      }
    }
    read_tools(f, r);
    f.boolean("add_generation_prompt", &r.add_generation_prompt);
  }
  f.string("user", &r.user);
  read_unsupported(f, endpoint, r.n);
  if (!f.ok()) return tl::unexpected(*f.error());
  return r;
}

}  // namespace ponder::coordinator::api
