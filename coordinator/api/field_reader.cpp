// Typed field reads with errors naming the field.
#include "coordinator/api/field_reader.h"

#include <limits>

#include "common/strings.h"

namespace ponder::coordinator::api {

std::string json_type_phrase(const nlohmann::ordered_json& v) {
  switch (v.type()) {
    case nlohmann::ordered_json::value_t::null:
      return "null";
    case nlohmann::ordered_json::value_t::object:
      return "an object";
    case nlohmann::ordered_json::value_t::array:
      return "an array";
    case nlohmann::ordered_json::value_t::string:
      return "a string";
    case nlohmann::ordered_json::value_t::boolean:
      return "a boolean";
    case nlohmann::ordered_json::value_t::number_integer:
    case nlohmann::ordered_json::value_t::number_unsigned:
      return "an integer";
    case nlohmann::ordered_json::value_t::number_float:
      return "a number";
    default:
      return "an unsupported value";
  }
}

const nlohmann::ordered_json* FieldReader::get(std::string_view key) const {
  auto it = object_.find(key);
  if (it == object_.end() || it->is_null()) return nullptr;
  return &*it;
}

const nlohmann::ordered_json* FieldReader::typed(std::string_view key,
                                                 bool type_ok(const nlohmann::ordered_json&),
                                                 const char* expected) {
  if (error_) return nullptr;
  const nlohmann::ordered_json* v = get(key);
  if (v == nullptr) return nullptr;
  if (!type_ok(*v)) {
    fail(invalid_type(
        std::string(key),
        strformat("Invalid type for '%.*s': expected %s, but got %s instead.", (int)key.size(),
                  key.data(), expected, json_type_phrase(*v).c_str())));
    return nullptr;
  }
  return v;
}

bool FieldReader::number(std::string_view key, double* out) {
  const auto* v = typed(
      key, [](const nlohmann::ordered_json& j) { return j.is_number(); }, "a number");
  if (v == nullptr) return false;
  *out = v->get<double>();
  return true;
}

bool FieldReader::number(std::string_view key, float* out) {
  double d = 0;
  if (!number(key, &d)) return false;
  *out = static_cast<float>(d);
  return true;
}

bool FieldReader::integer(std::string_view key, int64_t* out) {
  const auto* v = typed(
      key, [](const nlohmann::ordered_json& j) { return j.is_number_integer(); }, "an integer");
  if (v == nullptr) return false;
  if (v->is_number_unsigned() &&
      v->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    check(false, key, strformat("'%.*s' is too large", (int)key.size(), key.data()));
    return false;
  }
  *out = v->get<int64_t>();
  return true;
}

bool FieldReader::integer(std::string_view key, int32_t* out) {
  int64_t i = 0;
  if (!integer(key, &i)) return false;
  if (i < std::numeric_limits<int32_t>::min() || i > std::numeric_limits<int32_t>::max()) {
    check(
        false, key,
        strformat("'%.*s' is out of range (got %lld)", (int)key.size(), key.data(), (long long)i));
    return false;
  }
  *out = static_cast<int32_t>(i);
  return true;
}

bool FieldReader::boolean(std::string_view key, bool* out) {
  const auto* v = typed(
      key, [](const nlohmann::ordered_json& j) { return j.is_boolean(); }, "a boolean");
  if (v == nullptr) return false;
  *out = v->get<bool>();
  return true;
}

bool FieldReader::string(std::string_view key, std::string* out) {
  const auto* v = typed(
      key, [](const nlohmann::ordered_json& j) { return j.is_string(); }, "a string");
  if (v == nullptr) return false;
  *out = v->get<std::string>();
  return true;
}

void FieldReader::check(bool ok, std::string_view key, std::string message) {
  if (!ok) fail(invalid_value(std::string(key), std::move(message)));
}

void FieldReader::fail(ApiError e) {
  if (!error_) error_ = std::move(e);
}

}  // namespace ponder::coordinator::api
