// Every CPU kernel build this machine can run (AVX-512, AVX2) against the plain one-lane build,
// on random inputs with odd shapes, outputs poisoned first so an unwritten element shows; and the
// backend's RoPE and paged attention against direct formulas.
#include <cmath>
#include <limits>
#include <random>

#include <gtest/gtest.h>

#include "worker/backend/cpu/cpu_backend.h"
#include "worker/backend/cpu/kernels.h"
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
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, KernelIsa, ::testing::Values("avx512", "avx2"));

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
