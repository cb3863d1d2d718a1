// AVX2 build of the CPU kernels (compiled with -mavx2 -mfma -mf16c).
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "worker/backend/cpu/kernels.h"

namespace ponder::worker::cpu {
namespace avx2 {

struct V {
  using T = __m256;
  static constexpr int N = 8;
  static T zero() { return _mm256_setzero_ps(); }
  static T set1(float a) { return _mm256_set1_ps(a); }
  static T load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, T v) { _mm256_storeu_ps(p, v); }
  static T load_bf16(const uint16_t* p) {
    __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  static T load_f16(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static T fma(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static T add(T a, T b) { return _mm256_add_ps(a, b); }
  static float reduce(T a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};

#include "worker/backend/cpu/kernels_impl.inc"

}  // namespace avx2

const Kernels kKernelsAvx2 = {"avx2", avx2::matmul, avx2::dot, avx2::axpy, avx2::rms_norm_row,
                              avx2::to_f32, nullptr, avx2::dot_bf16, avx2::axpy_bf16, avx2::matmul_q8,
    avx2::quantize_rows_q8, avx2::quantize_row_i8, avx2::weighted_rows};

}  // namespace ponder::worker::cpu
