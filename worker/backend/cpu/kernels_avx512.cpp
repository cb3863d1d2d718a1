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

// R weight rows × T tokens with vdpbf16ps: each step takes 32 k-elements (16 pairs) of a row.
template <int R, int T>
inline void tile_bf16(const uint16_t* x, int64_t k, const uint16_t* w, int64_t r, float* y,
                      int64_t ldy, const float* bias) {
  __m512 acc[R][T];
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < T; ++j) acc[i][j] = _mm512_setzero_ps();
  const int64_t kv = k - k % 32;
  for (int64_t kk = 0; kk < kv; kk += 32) {
    __m512bh wv[R];
    for (int i = 0; i < R; ++i)
      wv[i] = (__m512bh)_mm512_loadu_si512(reinterpret_cast<const void*>(w + (r + i) * k + kk));
    for (int j = 0; j < T; ++j) {
      __m512bh xv = (__m512bh)_mm512_loadu_si512(reinterpret_cast<const void*>(x + j * k + kk));
      for (int i = 0; i < R; ++i) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], wv[i], xv);
    }
  }
  for (int i = 0; i < R; ++i) {
    for (int j = 0; j < T; ++j) {
      float s = _mm512_reduce_add_ps(acc[i][j]);
      for (int64_t kk = kv; kk < k; ++kk)
        s += bf16_to_f32(w[(r + i) * k + kk]) * bf16_to_f32(x[j * k + kk]);
      y[j * ldy + r + i] = s + (bias ? bias[r + i] : 0.0f);
    }
  }
}

template <int T>
inline void rows_bf16(const uint16_t* x, int64_t k, const uint16_t* w, const float* bias, float* y,
                      int64_t ldy, int64_t r0, int64_t r1) {
  constexpr int R = T == 1 ? 8 : 4;
  int64_t r = r0;
  for (; r + R <= r1; r += R) tile_bf16<R, T>(x, k, w, r, y, ldy, bias);
  for (; r < r1; ++r) tile_bf16<1, T>(x, k, w, r, y, ldy, bias);
}

void matmul_bf16(const uint16_t* x, int64_t n, int64_t k, const uint16_t* w, const float* bias,
                 float* y, int64_t ldy, int64_t r0, int64_t r1) {
  constexpr int64_t kRowBlock = 64;
  for (int64_t rb = r0; rb < r1; rb += kRowBlock) {
    int64_t re = rb + kRowBlock < r1 ? rb + kRowBlock : r1;
    int64_t t = 0;
    for (; t + 4 <= n; t += 4) rows_bf16<4>(x + t * k, k, w, bias, y + t * ldy, ldy, rb, re);
    switch (n - t) {
      case 3: rows_bf16<3>(x + t * k, k, w, bias, y + t * ldy, ldy, rb, re); break;
      case 2: rows_bf16<2>(x + t * k, k, w, bias, y + t * ldy, ldy, rb, re); break;
      case 1: rows_bf16<1>(x + t * k, k, w, bias, y + t * ldy, ldy, rb, re); break;
      default: break;
    }
  }
}

}  // namespace avx512

const Kernels kKernelsAvx512 = {"avx512", avx512::matmul, avx512::dot, avx512::axpy,
                                avx512::rms_norm_row, avx512::to_f32, nullptr,
                                avx512::dot_bf16, avx512::axpy_bf16};
const Kernels kKernelsAvx512Bf16 = {"avx512", avx512::matmul, avx512::dot, avx512::axpy,
                                    avx512::rms_norm_row, avx512::to_f32, avx512::matmul_bf16,
                                    avx512::dot_bf16, avx512::axpy_bf16};

}  // namespace ponder::worker::cpu
