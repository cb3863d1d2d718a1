// CPU kernel table: the same kernels compiled for AVX-512, AVX2 and baseline x86-64
// (kernels_impl.inc), picked once at run time from the CPU's features, so one binary runs on any
// x86-64 machine.
#pragma once

#include <cstdint>

#include "worker/dtype.h"

namespace ponder::worker::cpu {

struct Kernels {
  const char* isa;  // "avx512", "avx2", "generic"
  // y[t, r] = dot(x[t, :k], w[r, :k]) (+ bias[r]) for t < n and r in [r0, r1); ldy is y's row
  // stride. w is [m, k] row-major in dtype wdt (f32, f16, bf16).
  void (*matmul)(const float* x, int64_t n, int64_t k, const void* w, DType wdt,
                 const float* bias, float* y, int64_t ldy, int64_t r0, int64_t r1);
  float (*dot)(const float* a, const float* b, int64_t n);
  // y += a * x
  void (*axpy)(float a, const float* x, float* y, int64_t n);
  // out = x * rsqrt(mean(x^2) + eps) * w
  void (*rms_norm_row)(const float* x, const float* w, float eps, int64_t n, float* out);
  // dst[i] = float(src[i]) for src of dtype dt
  void (*to_f32)(const void* src, DType dt, int64_t n, float* dst);
  // Like matmul with bf16 weights, but x is bf16 too ([n, k], already rounded) and the products
  // go through the CPU's bf16 dot-product instruction (AVX512_BF16: twice the f32 FMA rate),
  // accumulating in f32. nullptr where the CPU lacks it.
  void (*matmul_bf16)(const uint16_t* x, int64_t n, int64_t k, const uint16_t* w,
                      const float* bias, float* y, int64_t ldy, int64_t r0, int64_t r1);
  // dot / axpy with the second operand in bf16 (a bf16 KV cache).
  float (*dot_bf16)(const float* a, const uint16_t* b, int64_t n);
  void (*axpy_bf16)(float a, const uint16_t* x, float* y, int64_t n);
};

const Kernels& kernels();
// The kernel set for an ISA name, or nullptr when this CPU cannot run it (for tests/benchmarks).
const Kernels* kernels_for(const char* isa);

// Per-ISA tables, defined in kernels_<isa>.cpp.
extern const Kernels kKernelsAvx512;
extern const Kernels kKernelsAvx512Bf16;  // kKernelsAvx512 plus matmul_bf16
extern const Kernels kKernelsAvx2;
extern const Kernels kKernelsGeneric;

}  // namespace ponder::worker::cpu
