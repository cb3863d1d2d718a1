// Element types of tensors and the scalar conversions between them (bf16/f16 <-> f32).
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

#include "common/status.h"

namespace ponder::worker {

enum class DType : uint8_t { kF32, kF16, kBF16, kF64, kI64, kI32, kI16, kI8, kU8, kBool, kF8E4M3 };

size_t dtype_size(DType dtype);
std::string_view dtype_name(DType dtype);  // safetensors spelling: "F32", "BF16", ...
// Parses the safetensors dtype string ("F32", "BF16", ...).
Expected<DType> parse_safetensors_dtype(std::string_view text);
// Parses a config.json torch_dtype ("float32", "bfloat16", "float16").
Expected<DType> parse_torch_dtype(std::string_view text);

inline float bf16_to_f32(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest even; NaN stays NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

float f16_to_f32(uint16_t h);
// FP8 E4M3 (the "fn" variant: no infinities, S.1111.111 is NaN), as DeepSeek's checkpoints store
// weights: exactly representable in f32.
float f8e4m3_to_f32(uint8_t v);
uint16_t f32_to_f16(float f);

}  // namespace ponder::worker
