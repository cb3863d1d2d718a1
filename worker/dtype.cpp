// DType names, sizes and the IEEE half-precision conversions.
#include "worker/dtype.h"

#include <cmath>

namespace ponder::worker {
namespace {
struct DTypeInfo {
  DType dtype;
  std::string_view name;
  size_t size;
};
constexpr DTypeInfo kDTypes[] = {
    {DType::kF32, "F32", 4}, {DType::kF16, "F16", 2}, {DType::kBF16, "BF16", 2},
    {DType::kF64, "F64", 8}, {DType::kI64, "I64", 8}, {DType::kI32, "I32", 4},
    {DType::kI16, "I16", 2}, {DType::kI8, "I8", 1},   {DType::kU8, "U8", 1},
    {DType::kBool, "BOOL", 1}, {DType::kF8E4M3, "F8_E4M3", 1},
};
}  // namespace

size_t dtype_size(DType dtype) { return kDTypes[static_cast<int>(dtype)].size; }
std::string_view dtype_name(DType dtype) { return kDTypes[static_cast<int>(dtype)].name; }

Expected<DType> parse_safetensors_dtype(std::string_view text) {
  for (const auto& info : kDTypes) {
    if (info.name == text) return info.dtype;
  }
  return error(StatusCode::kInvalidArgument, "unknown dtype '%.*s'", static_cast<int>(text.size()),
               text.data());
}

Expected<DType> parse_torch_dtype(std::string_view text) {
  if (text == "float32") return DType::kF32;
  if (text == "bfloat16") return DType::kBF16;
  if (text == "float16") return DType::kF16;
  return error(StatusCode::kInvalidArgument, "unsupported torch_dtype '%.*s'",
               static_cast<int>(text.size()), text.data());
}

float f8e4m3_to_f32(uint8_t v) {
  struct Table {
    float value[256];
    Table() {
      for (int i = 0; i < 256; ++i) {
        const float sign = (i & 0x80) ? -1.0f : 1.0f;
        const int exp = (i >> 3) & 0xf, mant = i & 0x7;
        if (exp == 0xf && mant == 0x7) {
          value[i] = std::nanf("");
        } else if (exp == 0) {  // subnormal: m · 2^-9
          value[i] = sign * std::ldexp(static_cast<float>(mant), -9);
        } else {
          value[i] = sign * std::ldexp(1.0f + static_cast<float>(mant) / 8.0f, exp - 7);
        }
      }
    }
  };
  static const Table table;
  return table.value[v];
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: value = mant * 2^-24
      float f = std::ldexp(static_cast<float>(mant), -24);
      std::memcpy(&bits, &f, 4);
      bits |= sign;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  float a = std::fabs(f);
  if (std::isnan(f)) return sign | 0x7e00u;
  if (a >= 65520.0f) return sign | 0x7c00u;  // rounds to infinity
  if (a < 6.103515625e-05f) {                 // subnormal half (or zero)
    return sign | static_cast<uint16_t>(std::nearbyint(a * 16777216.0f));
  }
  uint32_t abits = bits & 0x7fffffffu;
  // Round mantissa from 23 to 10 bits, nearest even, then rebias the exponent.
  abits += 0xfffu + ((abits >> 13) & 1u);
  return sign | static_cast<uint16_t>((abits >> 13) - (112u << 10));
}

}  // namespace ponder::worker
