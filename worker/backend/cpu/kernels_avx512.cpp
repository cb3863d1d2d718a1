// AVX-512 build of the CPU kernels (compiled with -mavx512f -mavx512bw -mavx512vl -mavx512dq
// -mavx512bf16 -mavx512vnni -mfma -mf16c; the bf16 and VNNI kernels run only where the CPU has them).
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

#define PONDER_KERNELS_VECTOR_QUANTIZE_ROW
#include "worker/backend/cpu/kernels_impl.inc"

namespace {

// The portable quantize_row_i8's rounding (x · inv in f32, nearest even, clamped), 16 lanes at a
// time.
float quantize_row_i8(const float* w, int64_t k, int8_t* q) {
  const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  __m512 vmax = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= k; i += 16) vmax = _mm512_max_ps(vmax, _mm512_and_ps(_mm512_loadu_ps(w + i), abs_mask));
  float amax = _mm512_reduce_max_ps(vmax);
  for (; i < k; ++i) amax = std::fmax(amax, std::fabs(w[i]));
  const float scale = amax / 127.0f, inv = scale > 0.0f ? 1.0f / scale : 0.0f;
  const __m512 vinv = _mm512_set1_ps(inv), lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
  for (i = 0; i + 16 <= k; i += 16) {
    __m512 v = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_loadu_ps(w + i), vinv),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + i), _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(v)));
  }
  for (; i < k; ++i) q[i] = to_i8(w[i] * inv);
  return scale;
}

}  // namespace

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

// R int8 weight rows × T quantized tokens with vpdpbusd (AVX512-VNNI): each step takes 64
// k-elements, two activation blocks (lanes 0-7 and 8-15). vpdpbusd multiplies unsigned by signed
// bytes, so the weights go in offset by 128 (w ^ 0x80) and 128 · x.sum[t] comes off at the end.
template <int R, int T>
inline void tile_q8(const QuantizedRows& x, int64_t t0, const int8_t* w, int64_t r,
                    const float* w_scale, const float* bias, float* y, int64_t ldy) {
  const int64_t k = x.k, nb = k / kQ8Block;
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512 acc[R][T];
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < T; ++j) acc[i][j] = _mm512_setzero_ps();
  auto step = [&](int64_t kk, int64_t b, __mmask64 mask, bool two_blocks) {
    __m512i wv[R];
    for (int i = 0; i < R; ++i)
      wv[i] = _mm512_xor_si512(_mm512_maskz_loadu_epi8(mask, w + (r + i) * k + kk), flip);
    for (int j = 0; j < T; ++j) {
      const int64_t t = t0 + j;
      const __m512i xv = _mm512_maskz_loadu_epi8(mask, x.q + t * k + kk);
      const float* xs = x.scale + t * nb + b;
      const __m512 sv = _mm512_insertf32x8(_mm512_set1_ps(xs[0]),
                                           two_blocks ? _mm256_set1_ps(xs[1]) : _mm256_setzero_ps(), 1);
      for (int i = 0; i < R; ++i) {
        const __m512i d = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv[i], xv);
        acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), sv, acc[i][j]);
      }
    }
  };
  int64_t kk = 0, b = 0;
  for (; kk + 2 * kQ8Block <= k; kk += 2 * kQ8Block, b += 2) step(kk, b, ~__mmask64{0}, true);
  if (kk < k) step(kk, b, __mmask64{0xffffffff}, false);  // one block of 32 left
  for (int i = 0; i < R; ++i) {
    for (int j = 0; j < T; ++j) {
      const float s = _mm512_reduce_add_ps(acc[i][j]) - 128.0f * x.sum[t0 + j];
      y[(t0 + j) * ldy + r + i] = w_scale[r + i] * s + (bias ? bias[r + i] : 0.0f);
    }
  }
}

template <int T>
inline void rows_q8(const QuantizedRows& x, int64_t t0, const int8_t* w, const float* w_scale,
                    const float* bias, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  constexpr int R = T == 1 ? 8 : 4;
  int64_t r = r0;
  for (; r + R <= r1; r += R) tile_q8<R, T>(x, t0, w, r, w_scale, bias, y, ldy);
  for (; r < r1; ++r) tile_q8<1, T>(x, t0, w, r, w_scale, bias, y, ldy);
}

void matmul_q8_vnni(const QuantizedRows& x, const int8_t* w, const float* w_scale,
                    const float* bias, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  constexpr int64_t kRowBlock = 64;
  for (int64_t rb = r0; rb < r1; rb += kRowBlock) {
    const int64_t re = rb + kRowBlock < r1 ? rb + kRowBlock : r1;
    int64_t t = 0;
    for (; t + 4 <= x.n; t += 4) rows_q8<4>(x, t, w, w_scale, bias, y, ldy, rb, re);
    switch (x.n - t) {
      case 3: rows_q8<3>(x, t, w, w_scale, bias, y, ldy, rb, re); break;
      case 2: rows_q8<2>(x, t, w, w_scale, bias, y, ldy, rb, re); break;
      case 1: rows_q8<1>(x, t, w, w_scale, bias, y, ldy, rb, re); break;
      default: break;
    }
  }
}

}  // namespace avx512

const Kernels kKernelsAvx512 = {"avx512", avx512::matmul, avx512::dot, avx512::axpy,
                                avx512::rms_norm_row, avx512::to_f32, nullptr,
                                avx512::dot_bf16, avx512::axpy_bf16, avx512::matmul_q8,
                                avx512::quantize_rows_q8, avx512::quantize_row_i8,
                                avx512::weighted_rows};
const Kernels kKernelsAvx512Bf16 = {"avx512", avx512::matmul, avx512::dot, avx512::axpy,
                                    avx512::rms_norm_row, avx512::to_f32, avx512::matmul_bf16,
                                    avx512::dot_bf16, avx512::axpy_bf16, avx512::matmul_q8_vnni,
                                    avx512::quantize_rows_q8, avx512::quantize_row_i8,
                                avx512::weighted_rows};

}  // namespace ponder::worker::cpu
