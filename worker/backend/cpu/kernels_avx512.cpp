// AVX-512 build of the CPU kernels (compiled with -mavx512f -mavx512bw -mavx512vl -mfma -mf16c).
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "worker/backend/cpu/kernels.h"

namespace ponder::worker::cpu {
namespace avx512 {

struct V {
  using T = __m512;
  static constexpr int N = 16;
  static T zero() { return _mm512_setzero_ps(); }
  static T set1(float a) { return _mm512_set1_ps(a); }
  static T load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, T v) { _mm512_storeu_ps(p, v); }
  static T load_bf16(const uint16_t* p) {
    __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  static T load_f16(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static T fma(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  static T add(T a, T b) { return _mm512_add_ps(a, b); }
  static float reduce(T a) { return _mm512_reduce_add_ps(a); }
};

#include "worker/backend/cpu/kernels_impl.inc"

}  // namespace avx512

const Kernels kKernelsAvx512 = {"avx512", avx512::matmul, avx512::dot, avx512::axpy,
                                avx512::rms_norm_row, avx512::to_f32};

}  // namespace ponder::worker::cpu
