// Run-time choice of the CPU kernel table.
#include "worker/backend/cpu/kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace ponder::worker::cpu {
namespace {

bool supports(const char* isa) {
  __builtin_cpu_init();
  if (std::strcmp(isa, "avx512") == 0)
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
  if (std::strcmp(isa, "avx2") == 0)
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("f16c");
  return std::strcmp(isa, "generic") == 0;
}

}  // namespace

void quantize_rows_q8(const float* x, int64_t k, int64_t t0, int64_t t1, int8_t* q, float* scale,
                      float* sum) {
  const int64_t nb = k / kQ8Block;
  for (int64_t t = t0; t < t1; ++t) {
    float total = 0.0f;
    for (int64_t b = 0; b < nb; ++b) {
      const float* xb = x + t * k + b * kQ8Block;
      int8_t* qb = q + t * k + b * kQ8Block;
      float amax = 0.0f;
      for (int64_t i = 0; i < kQ8Block; ++i) amax = std::max(amax, std::fabs(xb[i]));
      const float d = amax / 127.0f, inv = d > 0.0f ? 1.0f / d : 0.0f;
      int32_t s = 0;
      for (int64_t i = 0; i < kQ8Block; ++i) {
        qb[i] = static_cast<int8_t>(std::nearbyint(xb[i] * inv));
        s += qb[i];
      }
      scale[t * nb + b] = d;
      total += d * static_cast<float>(s);
    }
    sum[t] = total;
  }
}

const Kernels* kernels_for(const char* isa) {
  if (!supports(isa)) return nullptr;
  if (std::strcmp(isa, "avx512") == 0) {
    if (__builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512vnni"))
      return &kKernelsAvx512Bf16;
    return &kKernelsAvx512;
  }
  if (std::strcmp(isa, "avx2") == 0) return &kKernelsAvx2;
  return &kKernelsGeneric;
}

const Kernels& kernels() {
  static const Kernels* chosen = [] {
    for (const char* isa : {"avx512", "avx2"}) {
      if (const Kernels* k = kernels_for(isa)) return k;
    }
    return &kKernelsGeneric;
  }();
  return *chosen;
}

}  // namespace ponder::worker::cpu
