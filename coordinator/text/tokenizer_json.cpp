// JSON member readers with error messages that name the key and the expected kind.
#include "coordinator/text/tokenizer_json.h"

#include "common/check.h"

namespace ponder::text {
namespace {

const nlohmann::json* find(const nlohmann::json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

}  // namespace

Expected<std::string> json_type_of(const nlohmann::json& obj, const char* what) {
  if (!obj.is_object()) {
    return error(StatusCode::kInvalidArgument, "%s must be a JSON object, got %s", what,
                 obj.type_name());
  }
  const nlohmann::json* type = find(obj, "type");
  if (type == nullptr || !type->is_string()) {
    return error(StatusCode::kInvalidArgument, "%s has no string \"type\"", what);
  }
  return type->get<std::string>();
}

Expected<const nlohmann::json*> json_array_member(const nlohmann::json& obj, const char* key,
                                                  const char* what) {
  const nlohmann::json* value = find(obj, key);
  if (value == nullptr || !value->is_array()) {
    return error(StatusCode::kInvalidArgument, "%s: \"%s\" must be an array", what, key);
  }
  return value;
}

Expected<const nlohmann::json*> json_object_member(const nlohmann::json& obj, const char* key,
                                                   const char* what) {
  const nlohmann::json* value = find(obj, key);
  if (value == nullptr || !value->is_object()) {
    return error(StatusCode::kInvalidArgument, "%s: \"%s\" must be an object", what, key);
  }
  return value;
}

Expected<std::string> json_string_member(const nlohmann::json& obj, const char* key,
                                         const char* what) {
  const nlohmann::json* value = find(obj, key);
  if (value == nullptr || !value->is_string()) {
    return error(StatusCode::kInvalidArgument, "%s: \"%s\" must be a string", what, key);
  }
  return value->get<std::string>();
}

Expected<bool> json_optional_bool(const nlohmann::json& obj, const char* key, bool fallback,
                                  const char* what) {
  const nlohmann::json* value = find(obj, key);
  if (value == nullptr || value->is_null()) return fallback;
  if (!value->is_boolean()) {
    return error(StatusCode::kInvalidArgument, "%s: \"%s\" must be true or false", what, key);
  }
  return value->get<bool>();
}

Expected<int64_t> json_optional_int(const nlohmann::json& obj, const char* key, int64_t fallback,
                                    const char* what) {
  const nlohmann::json* value = find(obj, key);
  if (value == nullptr || value->is_null()) return fallback;
  if (!value->is_number_integer()) {
    return error(StatusCode::kInvalidArgument, "%s: \"%s\" must be an integer", what, key);
  }
  return value->get<int64_t>();
}

Expected<std::string> json_optional_string(const nlohmann::json& obj, const char* key,
                                           const std::string& fallback, const char* what) {
  const nlohmann::json* value = find(obj, key);
  if (value == nullptr || value->is_null()) return fallback;
  if (!value->is_string()) {
    return error(StatusCode::kInvalidArgument, "%s: \"%s\" must be a string", what, key);
  }
  return value->get<std::string>();
}

Expected<JsonPattern> json_pattern(const nlohmann::json& obj, const char* what) {
  PONDER_ASSIGN_OR_RETURN(const nlohmann::json* pattern, json_object_member(obj, "pattern", what));
  for (const auto& [kind, is_regex] : {std::pair{"String", false}, std::pair{"Regex", true}}) {
    const nlohmann::json* text = find(*pattern, kind);
    if (text != nullptr && text->is_string()) {
      return JsonPattern{text->get<std::string>(), is_regex};
    }
  }
  return error(StatusCode::kInvalidArgument,
               "%s: \"pattern\" must be {\"String\": ...} or {\"Regex\": ...}", what);
}

}  // namespace ponder::text
