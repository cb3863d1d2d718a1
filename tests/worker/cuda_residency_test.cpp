// The device-residency pieces that need no GPU (they run everywhere): ModelWeights::allocate lays
// out exactly the tensors ModelWeights::load reads, for whole models and shards; a model created
// from allocated weights computes what the loaded one does; host memory spaces, buffers and the
// KV cache's dtype rules.
#include <gtest/gtest.h>

#include <cstring>

#include "worker/backend/cpu/cpu_backend.h"
#include "worker/model/architecture.h"
#include "worker/model/decoder_model.h"

namespace ponder::worker {
namespace {

std::string fixture(const std::string& name) {
  return std::string(PONDER_TEST_DATA_DIR) + "/models/" + name;
}

void expect_same_layout(ModelWeights& a, ModelWeights& b, const std::string& what) {
  ASSERT_EQ(a.layers.size(), b.layers.size()) << what;
  auto same = [&](const Tensor& x, const Tensor& y, const char* name) {
    EXPECT_EQ(x.empty(), y.empty()) << what << " " << name;
    if (x.empty() || y.empty()) return;
    EXPECT_EQ(x.shape_string(), y.shape_string()) << what << " " << name;
    EXPECT_EQ(x.dtype, y.dtype) << what << " " << name;
  };
  same(a.embed, b.embed, "embed");
  same(a.final_norm, b.final_norm, "final_norm");
  same(a.lm_head, b.lm_head, "lm_head");
  EXPECT_EQ(a.lm_head.data == a.embed.data, b.lm_head.data == b.embed.data) << what << " tied";
  for (size_t i = 0; i < a.layers.size(); ++i) {
    const LayerWeights &x = a.layers[i], &y = b.layers[i];
    same(x.attn_norm, y.attn_norm, "attn_norm");
    same(x.wqkv, y.wqkv, "wqkv");
    same(x.bqkv, y.bqkv, "bqkv");
    same(x.q_norm, y.q_norm, "q_norm");
    same(x.k_norm, y.k_norm, "k_norm");
    same(x.wo, y.wo, "wo");
    same(x.bo, y.bo, "bo");
    same(x.mlp_norm, y.mlp_norm, "mlp_norm");
    same(x.w_gate_up, y.w_gate_up, "w_gate_up");
    same(x.b_gate_up, y.b_gate_up, "b_gate_up");
    same(x.w_down, y.w_down, "w_down");
    same(x.b_down, y.b_down, "b_down");
  }
  EXPECT_EQ(a.tensors().size(), b.tensors().size()) << what;
}

class Residency : public ::testing::TestWithParam<std::string> {};

TEST_P(Residency, AllocatedWeightsHaveTheLoadedLayoutForEveryShard) {
  auto config = load_model_config(fixture(GetParam()));
  ASSERT_TRUE(config.has_value());
  auto ckpt = Checkpoint::open(fixture(GetParam()));
  ASSERT_TRUE(ckpt.has_value());
  const DType dt = config->dtype;
  const std::vector<ShardSpec> shards = {
      {},
      {.tp_rank = 1, .tp_size = 2},
      {.layer_begin = 0, .layer_end = 1, .first_stage = true, .last_stage = false},
      {.tp_rank = 0,
       .tp_size = 2,
       .layer_begin = 1,
       .layer_end = -1,
       .first_stage = false,
       .last_stage = true}};
  for (size_t i = 0; i < shards.size(); ++i) {
    ShardSpec s = shards[i];
    if (s.layer_end < 0) s.layer_end = config->n_layers;
    auto loaded = ModelWeights::load(*ckpt, *config, s, {});
    if (!loaded) continue;  // a layout this model cannot take
    auto made = ModelWeights::allocate(*config, s, dt, host_memory());
    ASSERT_TRUE(made.has_value()) << made.error().to_string();
    expect_same_layout(*loaded, *made, GetParam() + " shard " + std::to_string(i));
    EXPECT_EQ(made->device(), Device::kHost);
  }
}

// Weights allocated, then filled with the checkpoint's bytes, through DecoderModel::create: the
// same logits as DecoderModel::load.
TEST_P(Residency, CreatedModelComputesWhatTheLoadedOneDoes) {
  auto loaded = DecoderModel::load(fixture(GetParam()));
  ASSERT_TRUE(loaded.has_value());
  const ModelConfig& c = (*loaded)->config();
  auto w = ModelWeights::allocate(c, {}, c.dtype, host_memory());
  ASSERT_TRUE(w.has_value());
  ModelWeights& src = const_cast<ModelWeights&>((*loaded)->weights());
  std::vector<Tensor*> from = src.tensors(), to = w->tensors();
  ASSERT_EQ(from.size(), to.size());
  for (size_t i = 0; i < from.size(); ++i) {
    ASSERT_EQ(from[i]->nbytes(), to[i]->nbytes());
    std::memcpy(to[i]->data, from[i]->data, from[i]->nbytes());
  }
  std::unique_ptr<DecoderModel> made = DecoderModel::create(c, std::move(*w));
  auto backend = CpuBackend::create({.n_threads = 1});
  const std::vector<int32_t> tokens = {1, 5, 2, 7};
  std::vector<float> a(tokens.size() * c.vocab_size), b(a.size());
  for (auto* m : {loaded->get(), made.get()}) {
    auto cache = KvCache::create(m->kv_cache_config(4));
    std::vector<int32_t> table;
    ASSERT_TRUE(cache->reserve(table, tokens.size()).ok());
    BatchLayout batch;
    batch.seqs.push_back({.token_begin = 0, .n_tokens = 4, .start_pos = 0, .block_table = table});
    batch.positions = {0, 1, 2, 3};
    const std::vector<int32_t> rows = {0, 1, 2, 3};
    ASSERT_TRUE(
        m->forward(**backend, *cache, tokens, batch, rows, (m == loaded->get() ? a : b).data())
            .ok());
  }
  EXPECT_EQ(a, b);
}

INSTANTIATE_TEST_SUITE_P(Models, Residency,
                         ::testing::Values("llama_f32", "llama3_bf16", "llama_f16", "qwen2_f32",
                                           "qwen2_bf16", "qwen3_f32", "qwen3_bf16_sharded"));

TEST(HostMemory, BuffersAreZeroedAlignedAndMoveOnly) {
  auto b = host_memory().allocate(1000);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b->data()) % 256, 0u);
  for (size_t i = 0; i < 1000; ++i) ASSERT_EQ(b->as<char>()[i], 0);
  Buffer moved = std::move(*b);
  EXPECT_TRUE(b->empty());
  EXPECT_EQ(moved.size(), 1000u);
  EXPECT_EQ(moved.device(), Device::kHost);
  std::vector<char> rows(4 * 8, 'x');
  host_memory().copy_2d(moved.data(), 10, rows.data(), 8, 3, 4);  // 3 bytes of 4 rows
  for (int r = 0; r < 4; ++r) {
    EXPECT_EQ(moved.as<char>()[r * 10 + 2], 'x');
    EXPECT_EQ(moved.as<char>()[r * 10 + 3], 0);
  }
}

TEST(HostMemory, HostKvCachesAreF32) {
  const KvCacheConfig bf16{.n_layers = 1,
                           .n_kv_heads = 1,
                           .head_dim = 4,
                           .block_size = 4,
                           .n_blocks = 2,
                           .dtype = DType::kBF16};
  EXPECT_EQ(KvCache::create(bf16).error().code(), StatusCode::kInvalidArgument);
  const KvCacheConfig f16{.n_layers = 1,
                          .n_kv_heads = 1,
                          .head_dim = 4,
                          .block_size = 4,
                          .n_blocks = 2,
                          .dtype = DType::kF16};
  EXPECT_EQ(KvCache::create(f16).error().code(), StatusCode::kInvalidArgument);
  auto ok = KvCache::create(
      {.n_layers = 2, .n_kv_heads = 1, .head_dim = 4, .block_size = 4, .n_blocks = 2});
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->device(), Device::kHost);
  EXPECT_EQ(static_cast<char*>(ok->k_layer(1)) - static_cast<char*>(ok->k_layer(0)),
            2 * 1 * 4 * 4 * 4);
}

}  // namespace
}  // namespace ponder::worker
