// CPU kernel table: the same kernels compiled for AVX-512, AVX2 and baseline x86-64
// (kernels_impl.inc), picked once at run time from the CPU's features, so one binary runs on any
// x86-64 machine.
#pragma once

#include <cstdint>

#include "worker/dtype.h"

namespace ponder::worker::cpu {

// int8 weights: a row-major [m, k] int8 matrix with one f32 scale per row (symmetric,
// per output channel, as compressed-tensors W8A8 checkpoints store them); k a multiple of
// kQ8Block. Activations meet them quantized too, in blocks of kQ8Block along k (QuantizedRows).
inline constexpr int64_t kQ8Block = 32;

// Activations x [n, k] quantized per block of kQ8Block: x[t, i] ≈ scale[t, i / kQ8Block] ·
// q[t, i]; sum[t] = Σ_b scale[t, b] · Σ_{i in b} q[t, i] (the unsigned-offset correction of
// the VNNI kernel).
struct QuantizedRows {
  const int8_t* q = nullptr;     // [n, k]
  const float* scale = nullptr;  // [n, k / kQ8Block]
  const float* sum = nullptr;    // [n]
  int64_t n = 0, k = 0;
};

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
  // y[t, r] = w_scale[r] · Σ_b x.scale[t, b] · Σ_{i in b} x.q[t, i] · w[r, i] (+ bias[r]) for
  // t < x.n and r in [r0, r1): int8 weights [m, x.k] times quantized activations, the integer
  // dot products exact (AVX512-VNNI where the CPU has it).
  void (*matmul_q8)(const QuantizedRows& x, const int8_t* w, const float* w_scale,
                    const float* bias, float* y, int64_t ldy, int64_t r0, int64_t r1);
  // Symmetric round-to-nearest-even int8 of rows [t0, t1) of x [*, k] per block of kQ8Block
  // (scale amax / 127; an all-zero block gets scale 0) into QuantizedRows' buffers.
  void (*quantize_rows_q8)(const float* x, int64_t k, int64_t t0, int64_t t1, int8_t* q,
                           float* scale, float* sum);
  // One weight row the same way with one scale for all k values; returns the scale.
  float (*quantize_row_i8)(const float* w, int64_t k, int8_t* q);
  // out[g, :d] += Σ_{r < rows} p[g * ldp + r] · v[r * ldv + :d] for g < n: attention's weighted
  // sum of value rows (f32 or bf16, row stride ldv) for n query heads at once, each value row
  // read once for all of them.
  void (*weighted_rows)(const float* p, int64_t ldp, int64_t n, const void* v, DType vdt,
                        int64_t ldv, int64_t rows, int64_t d, float* out);
};

const Kernels& kernels();
// The kernel set for an ISA name, or nullptr when this CPU cannot run it (for tests/benchmarks).
const Kernels* kernels_for(const char* isa);

// Per-ISA tables, defined in kernels_<isa>.cpp.
extern const Kernels kKernelsAvx512;
extern const Kernels kKernelsAvx512Bf16;  // kKernelsAvx512 plus matmul_bf16 and VNNI matmul_q8
extern const Kernels kKernelsAvx2;
extern const Kernels kKernelsGeneric;

}  // namespace ponder::worker::cpu
