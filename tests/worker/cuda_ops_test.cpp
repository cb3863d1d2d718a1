// Every op of the CUDA backend against the CPU reference backend (llama.cpp's test-backend-ops
// idea): random inputs, odd shapes, unaligned operands, outputs poisoned with NaN first so an
// element an op fails to write shows, and an NMSE bound per dtype. Skipped without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "tests/worker/cuda_test_util.h"
#include "worker/backend/cpu/cpu_backend.h"
#include "worker/backend/cuda/cuda_backend.h"

namespace ponder::worker {
namespace {

using testing::DeviceArrays;
using testing::random_vec;

std::vector<uint16_t> to_half(const std::vector<float>& v, DType dt) {
  std::vector<uint16_t> h(v.size());
  for (size_t i = 0; i < v.size(); ++i)
    h[i] = dt == DType::kBF16 ? f32_to_bf16(v[i]) : f32_to_f16(v[i]);
  return h;
}

// v rounded to dt and back: the values both backends then multiply exactly.
std::vector<float> rounded(const std::vector<float>& v, DType dt) {
  if (dt == DType::kF32) return v;
  std::vector<float> r(v.size());
  for (size_t i = 0; i < v.size(); ++i)
    r[i] = dt == DType::kBF16 ? bf16_to_f32(f32_to_bf16(v[i])) : f16_to_f32(f32_to_f16(v[i]));
  return r;
}

class CudaOps : public ::testing::Test {
 protected:
  void SetUp() override {
    PONDER_SKIP_WITHOUT_GPU();
    auto gpu = CudaBackend::create({.graph_max_batch = 0});
    ASSERT_TRUE(gpu.has_value()) << gpu.error().to_string();
    gpu_ = std::move(*gpu);
    cpu_ = std::move(*CpuBackend::create({.n_threads = 2}));
    dev_ = std::make_unique<DeviceArrays>(*gpu_);
  }
  void TearDown() override {
    if (gpu_) {
      EXPECT_TRUE(gpu_->synchronize().ok());
    }
  }
  // A weight-like tensor of dtype dt from f32 values, on the host (for the CPU) and the device.
  std::pair<Tensor, Tensor> both(const std::vector<float>& v, DType dt,
                                 std::initializer_list<int64_t> dims, size_t offset = 0) {
    host_.push_back(dt == DType::kF32 ? std::vector<uint16_t>() : to_half(v, dt));
    host_f32_.push_back(v);
    void* h = dt == DType::kF32 ? static_cast<void*>(host_f32_.back().data())
                                : static_cast<void*>(host_.back().data());
    const size_t bytes = v.size() * dtype_size(dt);
    return {Tensor::view(h, dt, dims), dev_->upload(h, bytes, dt, dims, offset)};
  }

  std::unique_ptr<CudaBackend> gpu_;
  std::unique_ptr<CpuBackend> cpu_;
  std::unique_ptr<DeviceArrays> dev_;
  std::vector<std::vector<uint16_t>> host_;
  std::vector<std::vector<float>> host_f32_;
};

TEST_F(CudaOps, EmbeddingCopiesRowsOfEveryDtypeAndZeroesForeignIds) {
  const std::vector<int32_t> ids = {0, 36, -1, 5, 5, 17, -1, 2, 30};
  const int64_t vocab = 37, n = static_cast<int64_t>(ids.size());
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (int64_t d : {1, 7, 64, 300}) {
      auto [table_h, table_d] = both(random_vec(vocab * d, 1), dt, {vocab, d});
      std::vector<float> want(n * d);
      cpu_->embedding(table_h, ids, Tensor::view(want.data(), DType::kF32, {n, d}));
      Tensor out = dev_->poisoned({n, d});
      gpu_->embedding(table_d, ids, out);
      EXPECT_EQ(dev_->download(out), want) << dtype_name(dt) << " d=" << d;
    }
  }
}

TEST_F(CudaOps, RmsNormAndFusedResidualAddMatchCpu) {
  for (int64_t n : {1, 3, 17}) {
    for (int64_t d : {1, 7, 64, 80, 1000, 4096, 5000}) {
      const std::vector<float> x = random_vec(n * d, 2, 3.0f), r = random_vec(n * d, 3),
                               w = random_vec(d, 4);
      const Tensor w_d = dev_->upload(w, DType::kF32, {d});
      const Tensor w_h = Tensor::view(const_cast<float*>(w.data()), DType::kF32, {d});
      // out-of-place
      std::vector<float> want(n * d), xh = x;
      cpu_->rms_norm(Tensor::view(xh.data(), DType::kF32, {n, d}), w_h, 1e-6f,
                     Tensor::view(want.data(), DType::kF32, {n, d}));
      Tensor x_d = dev_->upload(x, DType::kF32, {n, d}), out = dev_->poisoned({n, d});
      gpu_->rms_norm(x_d, w_d, 1e-6f, out);
      EXPECT_LT(nmse(dev_->download(out), want), 1e-11) << "n=" << n << " d=" << d;
      // in place (out aliases x), as Qwen3's q/k norms run
      gpu_->rms_norm(x_d, w_d, 1e-6f, x_d);
      EXPECT_LT(nmse(dev_->download(x_d), want), 1e-11) << "in place n=" << n << " d=" << d;
      // residual += x; out = norm(residual)
      std::vector<float> res_h = r, want2(n * d);
      cpu_->add_rms_norm(Tensor::view(res_h.data(), DType::kF32, {n, d}),
                         Tensor::view(xh.data(), DType::kF32, {n, d}), w_h, 1e-5f,
                         Tensor::view(want2.data(), DType::kF32, {n, d}));
      Tensor res_d = dev_->upload(r, DType::kF32, {n, d}),
             x2_d = dev_->upload(x, DType::kF32, {n, d});
      Tensor out2 = dev_->poisoned({n, d});
      gpu_->add_rms_norm(res_d, x2_d, w_d, 1e-5f, out2);
      EXPECT_EQ(dev_->download(res_d), res_h) << "residual n=" << n << " d=" << d;
      EXPECT_LT(nmse(dev_->download(out2), want2), 1e-11) << "n=" << n << " d=" << d;
    }
  }
}

// Both backends multiply the same numbers: activations pre-rounded to the weights' dtype (the
// CUDA backend rounds them itself; on rounded values that is exact), f32 accumulation.
TEST_F(CudaOps, MatmulMatchesCpuForEveryDtypeShapeBiasAndAlignment) {
  int variant = 0;
  for (DType dt : {DType::kF32, DType::kBF16, DType::kF16}) {
    for (int64_t n : {1, 2, 3, 5, 17, 64, 130}) {
      for (int64_t k : {1, 15, 64, 67, 256}) {
        for (int64_t m : {1, 37, 300}) {
          ++variant;
          const bool with_bias = variant % 2 == 0;
          const size_t offset = variant % 3 == 0 ? 64 : (variant % 3 == 1 ? 0 : 4);
          const std::vector<float> x = rounded(random_vec(n * k, 5), dt);
          auto [w_h, w_d] = both(random_vec(m * k, 6, 0.2f), dt, {m, k}, offset);
          std::vector<float> bias = random_vec(m, 7);
          Tensor b_h, b_d;
          if (with_bias) {
            b_h = Tensor::view(bias.data(), DType::kF32, {m});
            b_d = dev_->upload(bias, DType::kF32, {m}, offset % 16);
          }
          std::vector<float> xh = x, want(n * m);
          cpu_->matmul(Tensor::view(xh.data(), DType::kF32, {n, k}), w_h, b_h,
                       Tensor::view(want.data(), DType::kF32, {n, m}));
          Tensor x_d = dev_->upload(x, DType::kF32, {n, k}, offset % 8);
          Tensor y = dev_->poisoned({n, m});
          gpu_->matmul(x_d, w_d, b_d, y);
          EXPECT_LT(nmse(dev_->download(y), want), dt == DType::kF32 ? 1e-10 : 1e-9)
              << dtype_name(dt) << " n=" << n << " k=" << k << " m=" << m << " bias=" << with_bias
              << " offset=" << offset;
        }
      }
    }
  }
}

// Unrounded activations: the CUDA backend's bf16/f16 rounding of them is the only difference
// from the CPU's exact f32 path.
TEST_F(CudaOps, MatmulRoundsActivationsToTheWeightsDtype) {
  const int64_t n = 9, k = 512, m = 200;
  for (DType dt : {DType::kBF16, DType::kF16}) {
    const std::vector<float> x = random_vec(n * k, 8);
    auto [w_h, w_d] = both(random_vec(m * k, 9, 0.05f), dt, {m, k});
    std::vector<float> xh = x, want(n * m);
    cpu_->matmul(Tensor::view(xh.data(), DType::kF32, {n, k}), w_h, Tensor{},
                 Tensor::view(want.data(), DType::kF32, {n, m}));
    Tensor y = dev_->poisoned({n, m});
    gpu_->matmul(dev_->upload(x, DType::kF32, {n, k}), w_d, Tensor{}, y);
    const double e = nmse(dev_->download(y), want);
    EXPECT_LT(e, dt == DType::kBF16 ? 3e-5 : 3e-7) << dtype_name(dt);
    EXPECT_GT(e, 0.0) << dtype_name(dt) << ": rounding should show";
  }
}

TEST_F(CudaOps, RopeMatchesCpuAtLargePositions) {
  std::mt19937 gen(10);
  for (int64_t n : {1, 5, 33}) {
    for (int64_t heads : {1, 3, 8}) {
      for (int64_t hd : {2, 12, 16, 24, 64, 128}) {
        RopeTable table;
        for (int64_t i = 0; i < hd / 2; ++i)
          table.inv_freq.push_back(static_cast<float>(std::pow(500000.0, -2.0 * i / hd)));
        table.attention_factor = hd == 64 ? 1.2f : 1.0f;
        std::vector<int32_t> pos(n);
        for (auto& p : pos) p = static_cast<int32_t>(gen() % 100000);
        std::vector<float> x = random_vec(n * heads * hd, 11), want = x;
        cpu_->rope(Tensor::view(want.data(), DType::kF32, {n, heads, hd}), pos, table);
        Tensor x_d = dev_->upload(x, DType::kF32, {n, heads, hd});
        gpu_->rope(x_d, pos, table);
        EXPECT_LT(nmse(dev_->download(x_d), want), 1e-12)
            << "n=" << n << " heads=" << heads << " hd=" << hd;
      }
    }
  }
}

TEST_F(CudaOps, SwigluCopyColumnsAddAndGatherRowsMatchCpu) {
  for (int64_t n : {1, 4, 9}) {
    for (int64_t ffn : {1, 37, 1000}) {
      std::vector<float> gu = random_vec(n * 2 * ffn, 12, 2.0f), want(n * ffn);
      cpu_->swiglu(Tensor::view(gu.data(), DType::kF32, {n, 2 * ffn}),
                   Tensor::view(want.data(), DType::kF32, {n, ffn}));
      Tensor out = dev_->poisoned({n, ffn});
      gpu_->swiglu(dev_->upload(gu, DType::kF32, {n, 2 * ffn}), out);
      EXPECT_LT(nmse(dev_->download(out), want), 1e-12) << "n=" << n << " ffn=" << ffn;
    }
  }
  const int64_t n = 7, w = 29;
  std::vector<float> src = random_vec(n * w, 13), dst_h = random_vec(n * 40, 14);
  Tensor src_d = dev_->upload(src, DType::kF32, {n, w});
  Tensor dst_d = dev_->upload(dst_h, DType::kF32, {n, 40});
  cpu_->copy_columns(Tensor::view(src.data(), DType::kF32, {n, w}), 3,
                     Tensor::view(dst_h.data(), DType::kF32, {n, 40}), 11, 17);
  gpu_->copy_columns(src_d, 3, dst_d, 11, 17);
  EXPECT_EQ(dev_->download(dst_d), dst_h);

  std::vector<float> a = random_vec(n * w, 15), b = random_vec(n * w, 16), sum = a;
  cpu_->add(Tensor::view(sum.data(), DType::kF32, {n, w}),
            Tensor::view(b.data(), DType::kF32, {n, w}));
  Tensor a_d = dev_->upload(a, DType::kF32, {n, w});
  gpu_->add(a_d, dev_->upload(b, DType::kF32, {n, w}));
  EXPECT_EQ(dev_->download(a_d), sum);

  const std::vector<int32_t> rows = {6, 0, 0, 3};
  std::vector<float> g(rows.size() * w);
  cpu_->gather_rows(Tensor::view(src.data(), DType::kF32, {n, w}), rows,
                    Tensor::view(g.data(), DType::kF32, {4, w}));
  Tensor g_d = dev_->poisoned({4, w});
  gpu_->gather_rows(src_d, rows, g_d);
  EXPECT_EQ(dev_->download(g_d), g);
}

// ---- paged KV store and attention ----

struct AttnShape {
  int64_t n_heads, n_kv, hd, block_size;
  DType kv_dtype;
};

void PrintTo(const AttnShape& s, std::ostream* os) {
  *os << s.n_heads << " heads, " << s.n_kv << " kv heads, head_dim " << s.hd << ", blocks of "
      << s.block_size << ", " << dtype_name(s.kv_dtype) << " cache";
}

std::string shape_name(const ::testing::TestParamInfo<AttnShape>& info) {
  const AttnShape& s = info.param;
  std::string name = "h";
  name += std::to_string(s.n_heads);
  name += "kv";
  name += std::to_string(s.n_kv);
  name += "d";
  name += std::to_string(s.hd);
  name += "bs";
  name += std::to_string(s.block_size);
  name += s.kv_dtype == DType::kBF16 ? "bf16" : "f32";
  return name;
}

class CudaAttention : public ::testing::TestWithParam<AttnShape> {
 protected:
  void SetUp() override {
    PONDER_SKIP_WITHOUT_GPU();
    const AttnShape& s = GetParam();
    auto gpu = CudaBackend::create({.graph_max_batch = 0});
    ASSERT_TRUE(gpu.has_value()) << gpu.error().to_string();
    gpu_ = std::move(*gpu);
    cpu_ = std::move(*CpuBackend::create({.n_threads = 2}));
    dev_ = std::make_unique<DeviceArrays>(*gpu_);
    const KvCacheConfig cfg{.n_layers = 2,
                            .n_kv_heads = s.n_kv,
                            .head_dim = s.hd,
                            .block_size = s.block_size,
                            .n_blocks = 4096 / s.block_size + 64};
    KvCacheConfig dcfg = cfg;
    dcfg.dtype = s.kv_dtype;
    cpu_cache_ = std::make_unique<KvCache>(std::move(*KvCache::create(cfg)));
    auto dc = KvCache::create(dcfg, gpu_->memory());
    ASSERT_TRUE(dc.has_value()) << dc.error().to_string();
    gpu_cache_ = std::make_unique<KvCache>(std::move(*dc));
  }

  // Stores k, v (values rounded to the device cache's dtype, so both caches hold the same
  // numbers) for `batch` in layer 1 of both caches.
  void store(const BatchLayout& batch, uint32_t seed) {
    const AttnShape& s = GetParam();
    const int64_t n = batch.n_tokens();
    std::vector<float> k = rounded(random_vec(n * s.n_kv * s.hd, seed), s.kv_dtype);
    std::vector<float> v = rounded(random_vec(n * s.n_kv * s.hd, seed + 1), s.kv_dtype);
    cpu_->kv_store(*cpu_cache_, 1, Tensor::view(k.data(), DType::kF32, {n, s.n_kv, s.hd}),
                   Tensor::view(v.data(), DType::kF32, {n, s.n_kv, s.hd}), batch);
    gpu_->kv_store(*gpu_cache_, 1, dev_->upload(k, DType::kF32, {n, s.n_kv, s.hd}),
                   dev_->upload(v, DType::kF32, {n, s.n_kv, s.hd}), batch);
  }

  void expect_attention_matches(const BatchLayout& batch, uint32_t seed, const char* what) {
    const AttnShape& s = GetParam();
    const int64_t n = batch.n_tokens();
    const float scale = 1.0f / std::sqrt(static_cast<float>(s.hd));
    std::vector<float> q = random_vec(n * s.n_heads * s.hd, seed, 2.0f), want(q.size());
    cpu_->attention(Tensor::view(q.data(), DType::kF32, {n, s.n_heads, s.hd}), *cpu_cache_, 1,
                    batch, scale, Tensor::view(want.data(), DType::kF32, {n, s.n_heads, s.hd}));
    Tensor out = dev_->poisoned({n, s.n_heads, s.hd});
    gpu_->attention(dev_->upload(q, DType::kF32, {n, s.n_heads, s.hd}), *gpu_cache_, 1, batch,
                    scale, out);
    ASSERT_TRUE(gpu_->synchronize().ok()) << what;
    EXPECT_LT(nmse(dev_->download(out), want), 1e-10) << what;
  }

  // Both caches' layer 1 as f32.
  void expect_caches_equal() {
    const KvCacheConfig& c = cpu_cache_->config();
    const size_t elems = c.n_blocks * c.n_kv_heads * c.block_size * c.head_dim;
    for (bool keys : {true, false}) {
      const float* want = keys ? cpu_cache_->k(1, 0, 0) : cpu_cache_->v(1, 0, 0);
      std::vector<float> got(elems);
      const void* src = keys ? gpu_cache_->k_layer(1) : gpu_cache_->v_layer(1);
      if (gpu_cache_->config().dtype == DType::kBF16) {
        std::vector<uint16_t> raw(elems);
        gpu_->memory().copy(raw.data(), src, elems * 2);
        for (size_t i = 0; i < elems; ++i) got[i] = bf16_to_f32(raw[i]);
      } else {
        gpu_->memory().copy(got.data(), src, elems * 4);
      }
      EXPECT_EQ(0, std::memcmp(got.data(), want, elems * 4)) << (keys ? "K" : "V");
    }
  }

  std::unique_ptr<CudaBackend> gpu_;
  std::unique_ptr<CpuBackend> cpu_;
  std::unique_ptr<DeviceArrays> dev_;
  std::unique_ptr<KvCache> cpu_cache_, gpu_cache_;
};

// Block tables reserved identically in both caches (same pool order, same ids).
struct Seqs {
  std::vector<std::vector<int32_t>> tables;
  void reserve(KvCache& a, KvCache& b, size_t seq, int64_t tokens) {
    if (tables.size() <= seq) tables.resize(seq + 1);
    std::vector<int32_t> copy = tables[seq];
    ASSERT_TRUE(a.reserve(tables[seq], tokens).ok());
    ASSERT_TRUE(b.reserve(copy, tokens).ok());
    ASSERT_EQ(copy, tables[seq]);
  }
};

BatchLayout layout(const std::vector<std::pair<int32_t, int32_t>>& seqs, const Seqs& t) {
  BatchLayout b;
  int32_t token = 0;
  for (size_t s = 0; s < seqs.size(); ++s) {
    b.seqs.push_back({.token_begin = token,
                      .n_tokens = seqs[s].second,
                      .start_pos = seqs[s].first,
                      .block_table = t.tables[s]});
    for (int32_t i = 0; i < seqs[s].second; ++i) b.positions.push_back(seqs[s].first + i);
    token += seqs[s].second;
  }
  return b;
}

TEST_P(CudaAttention, MixedPrefillAndDecodeOverScatteredBlocksMatchCpu) {
  // a: fresh prefill of 5; b: decode at 20; c: a 37-token chunk after 50 cached; d: decode at
  // 3000 (split-K across many key tiles). Histories first, interleaved so blocks scatter.
  Seqs t;
  t.reserve(*cpu_cache_, *gpu_cache_, 1, 8);
  t.reserve(*cpu_cache_, *gpu_cache_, 3, 1000);
  t.reserve(*cpu_cache_, *gpu_cache_, 2, 50);
  t.reserve(*cpu_cache_, *gpu_cache_, 1, 21);
  t.reserve(*cpu_cache_, *gpu_cache_, 3, 3001);
  t.reserve(*cpu_cache_, *gpu_cache_, 0, 5);
  t.reserve(*cpu_cache_, *gpu_cache_, 2, 87);
  store(layout({{0, 5}, {0, 20}, {0, 50}, {0, 3000}}, t), 20);
  const BatchLayout batch = layout({{0, 5}, {20, 1}, {50, 37}, {3000, 1}}, t);
  store(batch, 30);
  expect_caches_equal();
  expect_attention_matches(batch, 40, "mixed batch");
}

TEST_P(CudaAttention, DecodeOnlyBatchesOfManyLengthsMatchCpu) {
  Seqs t;
  const std::vector<int32_t> lengths = {1, 16, 17, 100, 1023, 2500};
  std::vector<std::pair<int32_t, int32_t>> history, step;
  Seqs with_history;
  for (size_t s = 0; s < lengths.size(); ++s) {
    t.reserve(*cpu_cache_, *gpu_cache_, s, lengths[s]);
    step.push_back({lengths[s] - 1, 1});
    if (lengths[s] > 1) {  // positions [0, L - 1) before the step
      history.push_back({0, lengths[s] - 1});
      with_history.tables.push_back(t.tables[s]);
    }
  }
  store(layout(history, with_history), 50);
  const BatchLayout batch = layout(step, t);
  store(batch, 60);
  expect_attention_matches(batch, 70, "decode-only batch");
}

TEST_P(CudaAttention, LongPrefillInOneChunkMatchesCpu) {
  Seqs t;
  t.reserve(*cpu_cache_, *gpu_cache_, 0, 200);
  t.reserve(*cpu_cache_, *gpu_cache_, 1, 3);
  const BatchLayout batch = layout({{0, 200}, {0, 3}}, t);
  store(batch, 80);
  expect_attention_matches(batch, 90, "prefill of 200 + 3");
}

TEST_P(CudaAttention, ShortBlockTableIsReportedNotRead) {
  const AttnShape& s = GetParam();
  Seqs t;
  t.reserve(*cpu_cache_, *gpu_cache_, 0, 1);  // one block, fewer than 40 tokens in every shape
  BatchLayout bad;
  bad.seqs.push_back(
      {.token_begin = 0, .n_tokens = 1, .start_pos = 39, .block_table = t.tables[0]});
  bad.positions = {39};
  Tensor k = dev_->poisoned({1, s.n_kv, s.hd});
  gpu_->kv_store(*gpu_cache_, 1, k, k, bad);
  const Status st = gpu_->synchronize();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.to_string();
  EXPECT_TRUE(gpu_->synchronize().ok());  // reported once; the backend keeps working
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CudaAttention,
    ::testing::Values(AttnShape{4, 2, 8, 4, DType::kF32}, AttnShape{6, 2, 12, 16, DType::kF32},
                      AttnShape{8, 1, 24, 16, DType::kF32}, AttnShape{32, 8, 128, 16, DType::kF32},
                      AttnShape{14, 2, 64, 16, DType::kF32}, AttnShape{4, 4, 256, 16, DType::kF32},
                      AttnShape{16, 2, 20, 32, DType::kF32}, AttnShape{4, 2, 8, 4, DType::kBF16},
                      AttnShape{32, 8, 128, 16, DType::kBF16},
                      AttnShape{14, 2, 64, 16, DType::kBF16},
                      AttnShape{4, 4, 256, 16, DType::kBF16}),
    shape_name);

// ---- steps: the uploaded layout, padding, and errors ----

TEST_F(CudaOps, StepWithAnInconsistentLayoutFailsAtEndStep) {
  std::vector<int32_t> table = {0};
  BatchLayout bad;
  bad.seqs.push_back({.token_begin = 0, .n_tokens = 2, .start_pos = 0, .block_table = table});
  bad.positions = {0, 5};  // not start_pos + i
  const StepShape shape = gpu_->begin_step(bad, {});
  EXPECT_EQ(shape.n_tokens, 2);
  const Status st = gpu_->end_step();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.to_string();
}

TEST_F(CudaOps, ReplayableDecodeStepsArePaddedToABucket) {
  std::vector<int32_t> t0 = {0}, t1 = {1}, t2 = {2};
  BatchLayout b;
  for (int s = 0; s < 3; ++s) {
    b.seqs.push_back({.token_begin = s,
                      .n_tokens = 1,
                      .start_pos = 3,
                      .block_table = s == 0 ? t0 : (s == 1 ? t1 : t2)});
    b.positions.push_back(3);
  }
  auto graphs = CudaBackend::create({.graph_max_batch = 64});
  ASSERT_TRUE(graphs.has_value());
  EXPECT_EQ((*graphs)->begin_step(b, {.replayable = true}).n_tokens, 4);
  EXPECT_TRUE((*graphs)->end_step().ok());
  EXPECT_EQ((*graphs)->begin_step(b, {.replayable = false}).n_tokens, 3);
  EXPECT_TRUE((*graphs)->end_step().ok());
  EXPECT_EQ(gpu_->begin_step(b, {.replayable = true}).n_tokens, 3);  // graphs off
  EXPECT_TRUE(gpu_->end_step().ok());
}

TEST_F(CudaOps, KvCacheBlockCopyOnTheDevice) {
  const KvCacheConfig cfg{.n_layers = 3,
                          .n_kv_heads = 2,
                          .head_dim = 8,
                          .block_size = 4,
                          .n_blocks = 6,
                          .dtype = DType::kBF16};
  auto cache = KvCache::create(cfg, gpu_->memory());
  ASSERT_TRUE(cache.has_value());
  const size_t per_layer = 6 * 2 * 4 * 8;
  std::vector<uint16_t> init(per_layer);
  for (size_t i = 0; i < per_layer; ++i) init[i] = static_cast<uint16_t>(i * 7 + 1);
  for (int l = 0; l < 3; ++l) {
    gpu_->memory().copy(cache->k_layer(l), init.data(), per_layer * 2);
    gpu_->memory().copy(cache->v_layer(l), init.data(), per_layer * 2);
  }
  cache->copy_block(1, 4, 3);  // the first 3 slots of block 1 into block 4, every layer
  for (int l = 0; l < 3; ++l) {
    std::vector<uint16_t> got(per_layer);
    gpu_->memory().copy(got.data(), cache->v_layer(l), per_layer * 2);
    for (int h = 0; h < 2; ++h)
      for (int slot = 0; slot < 4; ++slot)
        for (int d = 0; d < 8; ++d) {
          const size_t dst = ((4 * 2 + h) * 4 + slot) * 8 + d,
                       src = ((1 * 2 + h) * 4 + slot) * 8 + d;
          EXPECT_EQ(got[dst], slot < 3 ? init[src] : init[dst]) << l << " " << h << " " << slot;
        }
  }
}

}  // namespace
}  // namespace ponder::worker
