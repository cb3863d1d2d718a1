// Readers for tokenizer.json / tokenizer_config.json values whose errors name the key and what
// was expected ("pre_tokenizer Split: \"behavior\" must be a string"). Used by the loaders.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"

namespace ponder::text {

// obj["type"] as a string; `what` names the component ("normalizer", "decoder", ...).
Expected<std::string> json_type_of(const nlohmann::json& obj, const char* what);

// obj[key] that must be present and of the given kind.
Expected<const nlohmann::json*> json_array_member(const nlohmann::json& obj, const char* key,
                                                  const char* what);
Expected<const nlohmann::json*> json_object_member(const nlohmann::json& obj, const char* key,
                                                   const char* what);
Expected<std::string> json_string_member(const nlohmann::json& obj, const char* key,
                                         const char* what);

// Optional members: absent or null gives `fallback`; any other wrong type is an error.
Expected<bool> json_optional_bool(const nlohmann::json& obj, const char* key, bool fallback,
                                  const char* what);
Expected<int64_t> json_optional_int(const nlohmann::json& obj, const char* key, int64_t fallback,
                                    const char* what);
Expected<std::string> json_optional_string(const nlohmann::json& obj, const char* key,
                                           const std::string& fallback, const char* what);

// obj["pattern"], which is {"String": "..."} or {"Regex": "..."}.
struct JsonPattern {
  std::string text;
  bool is_regex = false;
};
Expected<JsonPattern> json_pattern(const nlohmann::json& obj, const char* what);

}  // namespace ponder::text
