// Every CPU kernel build this machine can run (AVX-512, AVX2) against the plain one-lane build,
// on random inputs with odd shapes, outputs poisoned first so an unwritten element shows; and the
// backend's RoPE and paged attention against direct formulas.
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include <gtest/gtest.h>

#include "worker/backend/cpu/cpu_backend.h"
#include "worker/backend/cpu/kernels.h"
#include "worker/model/model_weights.h"
#include "tests/worker/nmse.h"

namespace ponder::worker {
namespace {

std::vector<float> random_vec(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(gen);
  return v;
}

class KernelIsa : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    k_ = cpu::kernels_for(GetParam());
    if (k_ == nullptr) GTEST_SKIP() << "this CPU has no " << GetParam();
  }
  const cpu::Kernels* k_ = nullptr;
  const cpu::Kernels& ref_ = cpu::kKernelsGeneric;
};

TEST_P(KernelIsa, MatmulMatchesReferenceForEveryWeightDtypeAndOddShape) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (DType dt : {DType::kF32, DType::kBF16, DType::kF16}) {
    for (int64_t n : {1, 2, 3, 5, 7}) {
      for (int64_t k : {1, 15, 17, 64, 67}) {
        const int64_t m = 37;
        std::vector<float> x = random_vec(n * k, 1), wf = random_vec(m * k, 2), bias = random_vec(m, 3);
        std::vector<uint16_t> wh(m * k);
        for (int64_t i = 0; i < m * k; ++i)
          wh[i] = dt == DType::kBF16 ? f32_to_bf16(wf[i]) : f32_to_f16(wf[i]);
        const void* w = dt == DType::kF32 ? static_cast<const void*>(wf.data()) : wh.data();
        std::vector<float> got(n * m, nan), want(n * m, nan);
        // Two row ranges, as threads would split them.
        k_->matmul(x.data(), n, k, w, dt, bias.data(), got.data(), m, 0, 20);
        k_->matmul(x.data(), n, k, w, dt, bias.data(), got.data(), m, 20, m);
        ref_.matmul(x.data(), n, k, w, dt, bias.data(), want.data(), m, 0, m);
        EXPECT_LT(nmse(got.data(), want.data(), got.size()), 1e-12)
            << dtype_name(dt) << " n=" << n << " k=" << k;
      }
    }
  }
}

TEST_P(KernelIsa, VectorKernelsMatchReference) {
  for (int64_t n : {1, 7, 16, 33, 100}) {
    std::vector<float> a = random_vec(n, 4), b = random_vec(n, 5), w = random_vec(n, 6);
    EXPECT_NEAR(k_->dot(a.data(), b.data(), n), ref_.dot(a.data(), b.data(), n), 1e-4);
    std::vector<float> y1 = b, y2 = b;
    k_->axpy(0.5f, a.data(), y1.data(), n);
    ref_.axpy(0.5f, a.data(), y2.data(), n);
    EXPECT_LT(nmse(y1.data(), y2.data(), n), 1e-12);
    std::vector<float> o1(n, NAN), o2(n, NAN);
    k_->rms_norm_row(a.data(), w.data(), 1e-6f, n, o1.data());
    ref_.rms_norm_row(a.data(), w.data(), 1e-6f, n, o2.data());
    EXPECT_LT(nmse(o1.data(), o2.data(), n), 1e-12);
    std::vector<uint16_t> h(n);
    for (int64_t i = 0; i < n; ++i) h[i] = f32_to_bf16(a[i]);
    k_->to_f32(h.data(), DType::kBF16, n, o1.data());
    for (int64_t i = 0; i < n; ++i) EXPECT_EQ(o1[i], bf16_to_f32(h[i]));
    // bf16 second operands (a bf16 KV cache) against the f32 kernels on the widened values.
    EXPECT_NEAR(k_->dot_bf16(b.data(), h.data(), n), ref_.dot(b.data(), o1.data(), n), 1e-4);
    std::vector<float> z1 = b, z2 = b;
    k_->axpy_bf16(-1.5f, h.data(), z1.data(), n);
    ref_.axpy(-1.5f, o1.data(), z2.data(), n);
    EXPECT_LT(nmse(z1.data(), z2.data(), n), 1e-12);
  }
}

// int8 weights [m, k] and one scale per row, and activations quantized per block of 32.
struct Int8Case {
  std::vector<int8_t> w;
  std::vector<float> w_scale;
  std::vector<int8_t> xq;
  std::vector<float> x_scale, x_sum;
  cpu::QuantizedRows rows() const {
    return {xq.data(), x_scale.data(), x_sum.data(), static_cast<int64_t>(x_sum.size()),
            static_cast<int64_t>(xq.size() / x_sum.size())};
  }
};

Int8Case int8_case(int64_t n, int64_t k, int64_t m, uint32_t seed) {
  Int8Case c;
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> q(-127, 127);
  c.w.resize(m * k);
  for (auto& v : c.w) v = static_cast<int8_t>(q(gen));
  c.w_scale = random_vec(m, seed + 1, 0.01f);
  std::vector<float> x = random_vec(n * k, seed + 2);
  c.xq.resize(n * k);
  c.x_scale.resize(n * k / cpu::kQ8Block);
  c.x_sum.resize(n);
  cpu::kernels().quantize_rows_q8(x.data(), k, 0, n, c.xq.data(), c.x_scale.data(), c.x_sum.data());
  return c;
}

TEST_P(KernelIsa, Int8MatmulMatchesReference) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int64_t n : {1, 2, 3, 4, 5, 7}) {
    for (int64_t k : {32, 64, 96, 160}) {  // whole pairs of blocks, and one block left over
      const int64_t m = 37;
      Int8Case c = int8_case(n, k, m, static_cast<uint32_t>(n * 1000 + k));
      std::vector<float> bias = random_vec(m, 3), got(n * m, nan), want(n * m, nan);
      k_->matmul_q8(c.rows(), c.w.data(), c.w_scale.data(), bias.data(), got.data(), m, 0, 20);
      k_->matmul_q8(c.rows(), c.w.data(), c.w_scale.data(), bias.data(), got.data(), m, 20, m);
      ref_.matmul_q8(c.rows(), c.w.data(), c.w_scale.data(), bias.data(), want.data(), m, 0, m);
      EXPECT_LT(nmse(got.data(), want.data(), got.size()), 1e-12) << "n=" << n << " k=" << k;
      // The reference against the sum written out.
      for (int64_t t = 0; t < n; ++t) {
        for (int64_t r = 0; r < m; ++r) {
          double s = 0;
          for (int64_t i = 0; i < k; ++i)
            s += double(c.x_scale[(t * k + i) / cpu::kQ8Block]) * c.xq[t * k + i] * c.w[r * k + i];
          ASSERT_NEAR(want[t * m + r], c.w_scale[r] * s + bias[r], 1e-4 * (1 + std::fabs(s)));
        }
      }
    }
  }
}

TEST_P(KernelIsa, Int8QuantizersGiveThePortableOnesBytesAndScales) {
  for (int64_t k : {32, 96, 200, 2048}) {
    std::vector<float> x = random_vec(3 * k, static_cast<uint32_t>(k));
    x[5] = 0.5f * x[7];  // no tie is special: nearest even everywhere
    std::vector<int8_t> q1(3 * k), q2(3 * k);
    EXPECT_EQ(k_->quantize_row_i8(x.data(), k, q1.data()), ref_.quantize_row_i8(x.data(), k, q2.data()));
    EXPECT_EQ(q1, q2) << "k=" << k;
    if (k % cpu::kQ8Block) continue;
    std::vector<float> s1(3 * k / cpu::kQ8Block), s2(s1.size()), sum1(3), sum2(3);
    k_->quantize_rows_q8(x.data(), k, 0, 3, q1.data(), s1.data(), sum1.data());
    ref_.quantize_rows_q8(x.data(), k, 0, 3, q2.data(), s2.data(), sum2.data());
    EXPECT_EQ(q1, q2);
    EXPECT_EQ(s1, s2);
    // The sums of d · Σq may be contracted into FMAs differently per ISA: last-bit differences.
    for (int t = 0; t < 3; ++t) EXPECT_NEAR(sum1[t], sum2[t], 1e-5 * (1 + std::fabs(sum2[t])));
  }
}

TEST_P(KernelIsa, WeightedRowsMatchTheSumWrittenOut) {
  for (DType dt : {DType::kF32, DType::kBF16}) {
    for (int64_t n : {1, 3, 4, 7}) {
      for (int64_t d : {16, 40, 64}) {
        const int64_t rows = 13, ldv = d + 8, ldp = rows + 2;
        std::vector<float> p = random_vec(n * ldp, 21), vf = random_vec(rows * ldv, 22);
        std::vector<uint16_t> vh(vf.size());
        for (size_t i = 0; i < vf.size(); ++i) {
          vh[i] = f32_to_bf16(vf[i]);
          if (dt == DType::kBF16) vf[i] = bf16_to_f32(vh[i]);
        }
        const void* v = dt == DType::kF32 ? static_cast<const void*>(vf.data()) : vh.data();
        std::vector<float> got = random_vec(n * d, 23), want = got;
        k_->weighted_rows(p.data(), ldp, n, v, dt, ldv, rows, d, got.data());
        for (int64_t g = 0; g < n; ++g)
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < d; ++c) want[g * d + c] += p[g * ldp + r] * vf[r * ldv + c];
        EXPECT_LT(nmse(got.data(), want.data(), got.size()), 1e-12)
            << dtype_name(dt) << " n=" << n << " d=" << d;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, KernelIsa, ::testing::Values("avx512", "avx2"));

TEST(Quantize, ActivationBlocksRoundTripWithinHalfAStep) {
  const int64_t n = 3, k = 96;
  std::vector<float> x = random_vec(n * k, 9);
  for (int64_t i = 32; i < 64; ++i) x[i] = 0.0f;  // an all-zero block: scale 0, no NaN
  x[70] = 1e4f;                                   // an outlier moves only its own block's step
  std::vector<int8_t> q(n * k);
  std::vector<float> scale(n * k / cpu::kQ8Block), sum(n);
  cpu::kernels().quantize_rows_q8(x.data(), k, 0, n, q.data(), scale.data(), sum.data());
  EXPECT_EQ(scale[1], 0.0f);
  EXPECT_FLOAT_EQ(scale[2], 1e4f / 127);
  for (int64_t t = 0; t < n; ++t) {
    double want_sum = 0;
    for (int64_t i = 0; i < k; ++i) {
      const float d = scale[(t * k + i) / cpu::kQ8Block];
      EXPECT_LE(std::fabs(x[t * k + i] - d * q[t * k + i]), 0.5f * d + 1e-6f) << t << "," << i;
      want_sum += double(d) * q[t * k + i];
    }
    EXPECT_NEAR(sum[t], want_sum, 1e-3 * (1 + std::fabs(want_sum)));
  }
}

TEST(Quantize, WeightRowsRoundTripWithinHalfAStep) {
  std::vector<float> w = random_vec(200, 10);
  std::vector<int8_t> q(200);
  const float scale = quantize_row_int8(w.data(), 200, q.data());
  float amax = 0;
  for (float v : w) amax = std::max(amax, std::fabs(v));
  EXPECT_FLOAT_EQ(scale, amax / 127);
  for (int i = 0; i < 200; ++i) EXPECT_LE(std::fabs(w[i] - scale * q[i]), 0.5f * scale + 1e-7f);
  std::vector<float> zeros(64, 0.0f);
  EXPECT_EQ(quantize_row_int8(zeros.data(), 64, q.data()), 0.0f);
  EXPECT_EQ(q[0], 0);
}

TEST(Dtype, HalfConversionsRoundToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(3.140625f)), 3.140625f);
  EXPECT_EQ(f32_to_bf16(1.00390625f), 0x3f80);  // halfway: ties to even
  EXPECT_EQ(f16_to_f32(f32_to_f16(1.5f)), 1.5f);
  EXPECT_EQ(f16_to_f32(f32_to_f16(65504.0f)), 65504.0f);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_TRUE(std::isinf(f16_to_f32(f32_to_f16(1e6f))));
}

class CpuBackendOps : public ::testing::Test {
 protected:
  void SetUp() override { backend_ = std::move(*CpuBackend::create({.n_threads = 2})); }
  std::unique_ptr<CpuBackend> backend_;
};

TEST_F(CpuBackendOps, RopeRotatesHalvesByPositionTimesFrequency) {
  const int64_t n = 3, heads = 2, hd = 8;
  std::vector<float> x = random_vec(n * heads * hd, 7), orig = x;
  RopeTable table{.inv_freq = {1.0f, 0.1f, 0.01f, 0.001f}};
  std::vector<int32_t> pos = {0, 5, 1000};
  backend_->rope(Tensor::view(x.data(), DType::kF32, {n, heads, hd}), pos, table);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < hd / 2; ++i) {
        const float* o = orig.data() + (t * heads + h) * hd;
        double a = pos[t] * double(table.inv_freq[i]);
        EXPECT_NEAR(x[(t * heads + h) * hd + i], o[i] * std::cos(a) - o[i + hd / 2] * std::sin(a), 1e-5);
        EXPECT_NEAR(x[(t * heads + h) * hd + i + hd / 2], o[i + hd / 2] * std::cos(a) + o[i] * std::sin(a), 1e-5);
      }
}

TEST_F(CpuBackendOps, PagedGqaAttentionMatchesDirectSoftmax) {
  // Two sequences in one batch: one prefilling 5 tokens at positions 0..4, one decoding at 20
  // with its history scattered over non-contiguous blocks.
  const int64_t n_heads = 4, n_kv = 2, hd = 8, bs = 4;
  auto cache = std::move(*KvCache::create({.n_layers = 1, .n_kv_heads = n_kv, .head_dim = hd,
                                            .block_size = bs, .n_blocks = 16}));
  std::vector<int32_t> blocks_a, blocks_b, filler;
  ASSERT_TRUE(cache.reserve(blocks_b, 8).ok());
  ASSERT_TRUE(cache.reserve(filler, 4).ok());
  ASSERT_TRUE(cache.reserve(blocks_a, 5).ok());
  ASSERT_TRUE(cache.reserve(blocks_b, 21).ok());
  const int64_t len_b = 21;
  // History of b: positions 0..19, written directly; K/V values from a generator.
  std::vector<float> hist_k = random_vec(len_b * n_kv * hd, 8), hist_v = random_vec(len_b * n_kv * hd, 9);
  BatchLayout hist;
  hist.seqs.push_back({.token_begin = 0, .n_tokens = 20, .start_pos = 0, .block_table = blocks_b});
  for (int i = 0; i < 20; ++i) hist.positions.push_back(i);
  backend_->kv_store(cache, 0, Tensor::view(hist_k.data(), DType::kF32, {20, n_kv, hd}),
                     Tensor::view(hist_v.data(), DType::kF32, {20, n_kv, hd}), hist);

  BatchLayout batch;
  batch.seqs.push_back({.token_begin = 0, .n_tokens = 5, .start_pos = 0, .block_table = blocks_a});
  batch.seqs.push_back({.token_begin = 5, .n_tokens = 1, .start_pos = 20, .block_table = blocks_b});
  batch.positions = {0, 1, 2, 3, 4, 20};
  const int64_t n = 6;
  std::vector<float> k = random_vec(n * n_kv * hd, 10), v = random_vec(n * n_kv * hd, 11);
  std::vector<float> q = random_vec(n * n_heads * hd, 12), out(n * n_heads * hd, NAN);
  backend_->kv_store(cache, 0, Tensor::view(k.data(), DType::kF32, {n, n_kv, hd}),
                     Tensor::view(v.data(), DType::kF32, {n, n_kv, hd}), batch);
  const float scale = 0.35f;
  backend_->attention(Tensor::view(q.data(), DType::kF32, {n, n_heads, hd}), cache, 0, batch, scale,
                      Tensor::view(out.data(), DType::kF32, {n, n_heads, hd}));

  // Direct computation from the raw K/V arrays.
  std::copy(k.begin() + 5 * n_kv * hd, k.end(), hist_k.begin() + 20 * n_kv * hd);
  std::copy(v.begin() + 5 * n_kv * hd, v.end(), hist_v.begin() + 20 * n_kv * hd);
  for (int64_t t = 0; t < n; ++t) {
    const bool is_b = t == 5;
    const float* ks = is_b ? hist_k.data() : k.data();
    const float* vs = is_b ? hist_v.data() : v.data();
    const int64_t len = batch.positions[t] + 1;
    for (int64_t h = 0; h < n_heads; ++h) {
      const int64_t kvh = h / (n_heads / n_kv);
      std::vector<double> s(len);
      double mx = -1e30, sum = 0;
      for (int64_t j = 0; j < len; ++j) {
        double d = 0;
        for (int64_t i = 0; i < hd; ++i) d += q[(t * n_heads + h) * hd + i] * ks[(j * n_kv + kvh) * hd + i];
        s[j] = d * scale;
        mx = std::max(mx, s[j]);
      }
      for (auto& x : s) sum += x = std::exp(x - mx);
      for (int64_t i = 0; i < hd; ++i) {
        double o = 0;
        for (int64_t j = 0; j < len; ++j) o += s[j] / sum * vs[(j * n_kv + kvh) * hd + i];
        EXPECT_NEAR(out[(t * n_heads + h) * hd + i], o, 1e-5) << "t=" << t << " h=" << h;
      }
    }
  }
}

TEST_F(CpuBackendOps, InterleavedRopeOnTheTailOfEachHead) {
  // MLA: heads of 10 dims, the last 4 rotated, stored as pairs (x0, x1), (x2, x3); the rotated
  // pairs come back de-interleaved (first the pairs' first halves' results, then the seconds').
  const int64_t n = 2, heads = 3, hd = 10, skip = 6;
  std::vector<float> x = random_vec(n * heads * hd, 17), orig = x;
  RopeTable table{.inv_freq = {0.9f, 0.05f}, .attention_factor = 1.25f, .interleaved = true};
  std::vector<int32_t> pos = {3, 70};
  backend_->rope(Tensor::view(x.data(), DType::kF32, {n, heads, hd}), pos, table);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t h = 0; h < heads; ++h) {
      const float* o = orig.data() + (t * heads + h) * hd;
      const float* got = x.data() + (t * heads + h) * hd;
      for (int64_t i = 0; i < skip; ++i) EXPECT_EQ(got[i], o[i]);
      for (int64_t i = 0; i < 2; ++i) {
        const double a = pos[t] * double(table.inv_freq[i]);
        const double c = std::cos(a) * 1.25, sn = std::sin(a) * 1.25;
        const float even = o[skip + 2 * i], odd = o[skip + 2 * i + 1];
        EXPECT_NEAR(got[skip + i], even * c - odd * sn, 1e-5);
        EXPECT_NEAR(got[skip + 2 + i], odd * c + even * sn, 1e-5);
      }
    }
}

TEST_F(CpuBackendOps, HeadMatmulAndScatterAddMatchDirectSums) {
  // Per head h: y[:, h*ys + j] = Σ_i w[h*m + j, i] · x[:, h*xs + i], from strided columns.
  const int64_t n = 5, heads = 3, k = 4, m = 6, xs = 7, ys = 9;
  std::vector<float> x = random_vec(n * heads * xs, 21), w = random_vec(heads * m * k, 22);
  std::vector<uint16_t> w16(w.size());
  for (size_t i = 0; i < w.size(); ++i) w16[i] = f32_to_bf16(w[i]);
  for (DType dt : {DType::kF32, DType::kBF16}) {
    std::vector<float> y(n * heads * ys, -7.0f);
    const void* wd = dt == DType::kF32 ? static_cast<const void*>(w.data()) : w16.data();
    backend_->head_matmul(Tensor::view(x.data(), DType::kF32, {n, heads * xs}), xs,
                          Tensor::view(const_cast<void*>(wd), dt, {heads * m, k}), heads,
                          Tensor::view(y.data(), DType::kF32, {n, heads * ys}), ys);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t h = 0; h < heads; ++h) {
        for (int64_t j = 0; j < m; ++j) {
          double want = 0;
          for (int64_t i = 0; i < k; ++i) {
            const float wv = dt == DType::kF32 ? w[(h * m + j) * k + i] : bf16_to_f32(w16[(h * m + j) * k + i]);
            want += wv * x[t * heads * xs + h * xs + i];
          }
          EXPECT_NEAR(y[t * heads * ys + h * ys + j], want, 1e-5);
        }
        for (int64_t j = m; j < ys && h * ys + j < heads * ys; ++j)
          EXPECT_EQ(y[t * heads * ys + h * ys + j], -7.0f);  // columns between heads untouched
      }
  }
  // dst[rows[i]] += scales[i] · src[i]; other rows stay.
  std::vector<float> src = random_vec(3 * 4, 23), dst = random_vec(6 * 4, 24), before = dst;
  const std::vector<int32_t> rows = {4, 0, 2};
  const std::vector<float> scales = {0.5f, -2.0f, 3.0f};
  backend_->scatter_add_rows(Tensor::view(src.data(), DType::kF32, {3, 4}), rows, scales,
                             Tensor::view(dst.data(), DType::kF32, {6, 4}));
  for (int64_t r = 0; r < 6; ++r)
    for (int64_t c = 0; c < 4; ++c) {
      double want = before[r * 4 + c];
      for (size_t i = 0; i < rows.size(); ++i)
        if (rows[i] == r) want += scales[i] * src[i * 4 + c];
      EXPECT_NEAR(dst[r * 4 + c], want, 1e-6);
    }
  backend_->zero(Tensor::view(dst.data(), DType::kF32, {6, 4}));
  EXPECT_EQ(dst, std::vector<float>(24, 0.0f));
}

TEST_F(CpuBackendOps, LatentAttentionReadsValuesFromTheKeysHead) {
  // One latent row per position (d = 6 wide); a value is its first 4 columns; 3 query heads.
  const int64_t heads = 3, d = 6, lat = 4, n = 4;
  auto cache = std::move(*KvCache::create({.n_layers = 1, .n_kv_heads = 1, .head_dim = d,
                                            .block_size = 4, .n_blocks = 4, .latent_dim = lat}));
  EXPECT_EQ(KvCache::block_bytes(cache.config()), 4 * d * 4);  // keys only
  std::vector<int32_t> blocks;
  ASSERT_TRUE(cache.reserve(blocks, n).ok());
  BatchLayout batch;
  batch.seqs.push_back({.token_begin = 0, .n_tokens = int32_t(n), .start_pos = 0, .block_table = blocks});
  batch.positions = {0, 1, 2, 3};
  std::vector<float> keys = random_vec(n * d, 31), q = random_vec(n * heads * d, 32);
  std::vector<float> out(n * heads * lat, NAN);
  backend_->kv_store(cache, 0, Tensor::view(keys.data(), DType::kF32, {n, 1, d}), Tensor{}, batch);
  backend_->attention(Tensor::view(q.data(), DType::kF32, {n, heads, d}), cache, 0, batch, 0.5f,
                      Tensor::view(out.data(), DType::kF32, {n, heads, lat}));
  for (int64_t t = 0; t < n; ++t)
    for (int64_t h = 0; h < heads; ++h) {
      std::vector<double> s(t + 1);
      double mx = -1e30, sum = 0;
      for (int64_t j = 0; j <= t; ++j) {
        double dot = 0;
        for (int64_t i = 0; i < d; ++i) dot += q[(t * heads + h) * d + i] * keys[j * d + i];
        mx = std::max(mx, s[j] = dot * 0.5);
      }
      for (auto& v : s) sum += v = std::exp(v - mx);
      for (int64_t i = 0; i < lat; ++i) {
        double o = 0;
        for (int64_t j = 0; j <= t; ++j) o += s[j] / sum * keys[j * d + i];
        EXPECT_NEAR(out[(t * heads + h) * lat + i], o, 1e-5);
      }
    }
}

TEST_F(CpuBackendOps, Int8MatmulStaysCloseToTheF32MatmulOfItsWeights) {
  // y = x · Wᵀ with W quantized per row: the only error left is the activations' rounding to
  // int8 per block of 32 (relative error about 1/255 per element, averaging out over k).
  const int64_t n = 5, k = 256, m = 48;
  std::vector<float> x = random_vec(n * k, 11), wf = random_vec(m * k, 12, 0.05f);
  std::vector<int8_t> q(m * k);
  std::vector<float> scales(m), deq(m * k), bias = random_vec(m, 13);
  for (int64_t r = 0; r < m; ++r) {
    scales[r] = quantize_row_int8(wf.data() + r * k, k, q.data() + r * k);
    for (int64_t i = 0; i < k; ++i) deq[r * k + i] = scales[r] * q[r * k + i];
  }
  Tensor w = Tensor::view(q.data(), DType::kI8, {m, k});
  w.scale = scales.data();
  std::vector<float> got(n * m), want(n * m);
  backend_->matmul(Tensor::view(x.data(), DType::kF32, {n, k}), w,
                   Tensor::view(bias.data(), DType::kF32, {m}),
                   Tensor::view(got.data(), DType::kF32, {n, m}));
  backend_->matmul(Tensor::view(x.data(), DType::kF32, {n, k}),
                   Tensor::view(deq.data(), DType::kF32, {m, k}),
                   Tensor::view(bias.data(), DType::kF32, {m}),
                   Tensor::view(want.data(), DType::kF32, {n, m}));
  const double e = nmse(got.data(), want.data(), got.size());
  EXPECT_LT(e, 1e-4);
  EXPECT_GT(e, 0.0);  // it did take the int8 path
}

TEST_F(CpuBackendOps, KvCacheRunsOutCleanly) {
  auto cache = std::move(*KvCache::create({.n_layers = 1, .n_kv_heads = 1, .head_dim = 2,
                                            .block_size = 4, .n_blocks = 2}));
  std::vector<int32_t> a, b;
  ASSERT_TRUE(cache.reserve(a, 8).ok());
  Status st = cache.reserve(b, 1);
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(b.empty());
  cache.release(a);
  EXPECT_EQ(cache.blocks_free(), 2);
  EXPECT_TRUE(cache.reserve(b, 5).ok());
}

}  // namespace
}  // namespace ponder::worker
