#include "coordinator/model_text.h"

#include <climits>
#include <filesystem>
#include <fstream>
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

worker::SamplingParams GenerationDefaults::apply(worker::SamplingParams s) const {
  if (temperature) s.temperature = static_cast<float>(*temperature);
  if (top_p) s.top_p = static_cast<float>(*top_p);
  if (top_k) s.top_k = *top_k;
  if (min_p) s.min_p = static_cast<float>(*min_p);
  if (repetition_penalty) s.repetition_penalty = static_cast<float>(*repetition_penalty);
  return s;
}

nlohmann::ordered_json GenerationDefaults::to_json() const {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  if (temperature) j["temperature"] = *temperature;
  if (top_p) j["top_p"] = *top_p;
  if (top_k) j["top_k"] = *top_k;
  if (min_p) j["min_p"] = *min_p;
  if (repetition_penalty) j["repetition_penalty"] = *repetition_penalty;
  if (max_new_tokens) j["max_new_tokens"] = *max_new_tokens;
  if (!eos_token_ids.empty()) j["eos_token_id"] = eos_token_ids;
  return j;
}

Expected<GenerationDefaults> GenerationDefaults::load(const std::string& model_dir) {
  const std::filesystem::path path = std::filesystem::path(model_dir) / "generation_config.json";
  GenerationDefaults d;
  if (!std::filesystem::exists(path)) return d;
  std::ifstream in(path);
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return error(StatusCode::kInvalidArgument, "%s: not a JSON object", path.c_str());
  auto bad = [&](const char* key, const char* want) {
    return error(StatusCode::kInvalidArgument, "%s: '%s' must be %s", path.c_str(), key, want);
  };
  // Each key: absent or null is unset; else a number in range.
  struct Real {
    const char* key;
    std::optional<double>* out;
    double lo, hi;
    bool lo_open;
    const char* want;
  };
  const Real reals[] = {
      {"temperature", &d.temperature, 0.0, 1e6, false, "a number >= 0"},
      {"top_p", &d.top_p, 0.0, 1.0, true, "a number in (0, 1]"},
      {"min_p", &d.min_p, 0.0, 1.0, false, "a number in [0, 1]"},
      {"repetition_penalty", &d.repetition_penalty, 0.0, 1e6, true, "a number > 0"},
  };
  for (const Real& r : reals) {
    auto it = j.find(r.key);
    if (it == j.end() || it->is_null()) continue;
    if (!it->is_number()) return bad(r.key, r.want);
    const double v = it->get<double>();
    if (!(v >= r.lo && v <= r.hi) || (r.lo_open && v == r.lo)) return bad(r.key, r.want);
    *r.out = v;
  }
  if (auto it = j.find("top_k"); it != j.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > (1 << 30))
      return bad("top_k", "an integer >= 0");
    d.top_k = static_cast<int32_t>(it->get<int64_t>());
  }
  if (auto it = j.find("max_new_tokens"); it != j.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 1)
      return bad("max_new_tokens", "an integer >= 1");
    d.max_new_tokens = it->get<int64_t>();
  }
  if (auto it = j.find("eos_token_id"); it != j.end() && !it->is_null()) {
    const nlohmann::json ids = it->is_array() ? *it : nlohmann::json::array({*it});
    for (const auto& id : ids) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX)
        return bad("eos_token_id", "a token id or a list of them");
      d.eos_token_ids.push_back(static_cast<int32_t>(id.get<int64_t>()));
    }
  }
  return d;
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
  PONDER_ASSIGN_OR_RETURN(m.generation_defaults, GenerationDefaults::load(model_dir));
  auto open = m.tokenizer.token_id("<think>"), close = m.tokenizer.token_id("</think>");
  if (open && close) {
    m.reasoning = text::ReasoningConfig{};
    m.think_start = {*open};
    m.think_end = {*close};
    m.wait_tokens = m.tokenizer.encode("\nWait");
  }
  return m;
}

worker::EngineOptions ModelText::engine_options() const {
  worker::EngineOptions e;
  e.think_start = think_start;
  e.think_end = think_end;
  e.wait_tokens = wait_tokens;
  // generation_config.json's end-of-sequence ids over config.json's, as transformers' generate.
  e.eos_token_ids = generation_defaults.eos_token_ids;
  text::Tokenizer tok = tokenizer;
  e.token_bytes = [tok](int32_t t) { return tok.decode(std::span<const int32_t>(&t, 1)); };
  return e;
}

}  // namespace ponder::coordinator
