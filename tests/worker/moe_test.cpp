// Mixture-of-experts, MLA and FP8 pieces that the parity fixtures cannot pin down one by one: the
// routing rules on hand-made scores (group limits, the correction bias, ties, normalisation),
// parameter counts against the checkpoints, the latent KV cache's size, and FP8 checkpoints.
#include <algorithm>
#include <cmath>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "worker/backend/cpu/cpu_backend.h"
#include "worker/batch_runner.h"
#include "worker/model/architecture.h"
#include "worker/model/decoder_model.h"
#include "worker/model/moe_router.h"
#include "worker/safetensors.h"

namespace ponder::worker {
namespace {

std::string fixture(const std::string& name) {
  return std::string(PONDER_TEST_DATA_DIR) + "/models/" + name;
}

float logit_of(float p) { return std::log(p / (1.0f - p)); }

TEST(MoeRouter, SoftmaxTopKWithAndWithoutNormalisation) {
  MoeConfig c{.n_experts = 4, .top_k = 2, .scoring = MoeScoring::kSoftmax};
  const float logits[] = {2.0f, 1.0f, 3.0f, 0.0f};
  const float z = std::exp(2.0f) + std::exp(1.0f) + std::exp(3.0f) + 1.0f;
  int32_t experts[2];
  float weights[2];
  route_tokens(c, logits, 1, {}, experts, weights);
  EXPECT_EQ(experts[0], 2);
  EXPECT_EQ(experts[1], 0);
  EXPECT_NEAR(weights[0], std::exp(3.0f) / z, 1e-6);
  EXPECT_NEAR(weights[1], std::exp(2.0f) / z, 1e-6);
  c.norm_topk_prob = true;
  route_tokens(c, logits, 1, {}, experts, weights);
  EXPECT_NEAR(weights[0] + weights[1], 1.0f, 1e-6);
  EXPECT_NEAR(weights[0] / weights[1], std::exp(1.0f), 1e-5);
}

TEST(MoeRouter, SigmoidGroupsAreChosenByTheirTwoBestAndTheBiasOnlySteers) {
  // 8 experts in 4 groups of 2; the best expert (0) sits in a group whose sum of two is low.
  MoeConfig c{.n_experts = 8, .top_k = 2, .scoring = MoeScoring::kSigmoid, .score_bias = true,
              .n_group = 4, .topk_group = 2, .norm_topk_prob = true,
              .routed_scaling_factor = 2.5};
  const float p[] = {0.95f, 0.05f, 0.6f, 0.6f, 0.55f, 0.54f, 0.1f, 0.1f};
  float logits[8];
  for (int i = 0; i < 8; ++i) logits[i] = logit_of(p[i]);
  const std::vector<float> no_bias(8, 0.0f);
  int32_t experts[2];
  float weights[2];
  route_tokens(c, logits, 1, no_bias, experts, weights);
  // Groups 1 (1.2) and 2 (1.09) win over group 0 (1.0); experts 2 and 3 tie: the lower first.
  EXPECT_EQ(experts[0], 2);
  EXPECT_EQ(experts[1], 3);
  EXPECT_NEAR(weights[0], 1.25f, 1e-5);  // 0.6 / 1.2 · 2.5
  EXPECT_NEAR(weights[1], 1.25f, 1e-5);
  // A bias lifts group 3 and its experts into the choice; the weights stay their own scores.
  std::vector<float> bias(8, 0.0f);
  bias[6] = 0.7f;
  bias[7] = 0.6f;
  route_tokens(c, logits, 1, bias, experts, weights);
  EXPECT_EQ(experts[0], 6);
  EXPECT_EQ(experts[1], 7);
  EXPECT_NEAR(weights[0], 1.25f, 1e-5);  // 0.1 / 0.2 · 2.5
  // Without group limits the best two overall win, unnormalised and unscaled.
  MoeConfig flat = c;
  flat.n_group = flat.topk_group = 1;
  flat.norm_topk_prob = false;
  flat.routed_scaling_factor = 1.0;
  route_tokens(flat, logits, 1, no_bias, experts, weights);
  EXPECT_EQ(experts[0], 0);
  EXPECT_EQ(experts[1], 2);
  EXPECT_NEAR(weights[0], 0.95f, 1e-6);
  EXPECT_NEAR(weights[1], 0.6f, 1e-6);
}

TEST(MoeRouter, DeepSeekV2GroupsAreChosenByTheirBestExpert) {
  // Softmax over 6 experts in 3 groups; keep 1 group. Group 0 holds the best expert (by its best
  // one, group 0 wins though group 1 has the better pair), top 2 within it, unnormalised.
  MoeConfig c{.n_experts = 6, .top_k = 2, .scoring = MoeScoring::kSoftmax, .n_group = 3,
              .topk_group = 1, .group_by_max = true, .routed_scaling_factor = 1.5};
  const float logits[] = {3.0f, -2.0f, 2.5f, 2.4f, 0.0f, 0.1f};
  float z = 0;
  for (float l : logits) z += std::exp(l);
  int32_t experts[2];
  float weights[2];
  route_tokens(c, logits, 1, {}, experts, weights);
  EXPECT_EQ(experts[0], 0);
  EXPECT_EQ(experts[1], 1);
  EXPECT_NEAR(weights[0], 1.5f * std::exp(3.0f) / z, 1e-6);
  EXPECT_NEAR(weights[1], 1.5f * std::exp(-2.0f) / z, 1e-6);
  c.group_by_max = false;  // V3's rule: the best two per group → group 1 (2.5 + 2.4)
  route_tokens(c, logits, 1, {}, experts, weights);
  EXPECT_EQ(experts[0], 2);
  EXPECT_EQ(experts[1], 3);
}

TEST(MoeRouter, EveryTokenOfABatchIsRoutedOnItsOwn) {
  MoeConfig c{.n_experts = 3, .top_k = 1, .scoring = MoeScoring::kSoftmax};
  const float logits[] = {0, 0, 1, 5, 0, 0, 0, 2, 0};
  int32_t experts[3];
  float weights[3];
  route_tokens(c, logits, 3, {}, experts, weights);
  EXPECT_EQ(experts[0], 2);
  EXPECT_EQ(experts[1], 0);
  EXPECT_EQ(experts[2], 1);
}

class MoeModels : public ::testing::TestWithParam<std::string> {};

TEST_P(MoeModels, TotalParamsCountEveryCheckpointTensor) {
  auto config = load_model_config(fixture(GetParam()));
  ASSERT_TRUE(config.has_value()) << config.error().to_string();
  auto ckpt = Checkpoint::open(fixture(GetParam()));
  ASSERT_TRUE(ckpt.has_value()) << ckpt.error().to_string();
  int64_t numel = 0;
  for (const auto& file : ckpt->files())
    for (const TensorInfo& t : file->tensors()) numel += t.numel();
  EXPECT_EQ(config->total_params(), numel);
}

TEST_P(MoeModels, ActiveParamsCountTopKExpertsOfEachMoeLayer) {
  auto c = load_model_config(fixture(GetParam()));
  ASSERT_TRUE(c.has_value());
  int64_t moe_layers = 0;
  for (int64_t l = 0; l < c->n_layers; ++l) moe_layers += c->layer_is_moe(l);
  ASSERT_GT(moe_layers, 0);
  // Total minus active: the unused experts, the embedding (lm_head is a matmul; a tied one is
  // the embedding), the norms and the correction biases.
  const int64_t h = c->hidden_size, n_e = c->moe.n_experts, top_k = c->moe.top_k;
  const int64_t idle_experts = moe_layers * (n_e - top_k) * 3 * h * c->moe.ffn;
  const int64_t embed = c->tie_word_embeddings ? 0 : c->vocab_size * h;
  const int64_t norms = c->n_layers * (2 * h + (c->qk_norm ? 2 * c->head_dim : 0) +
                                       c->mla.q_lora_rank + c->mla.kv_lora_rank) +
                        h + (c->moe.score_bias ? moe_layers * n_e : 0);
  EXPECT_EQ(c->total_params() - c->matmul_params(), idle_experts + embed + norms);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, MoeModels,
                         ::testing::Values("qwen3_moe_f32", "qwen3_moe_bf16", "deepseek_v3_f32",
                                           "deepseek_v3_bf16", "deepseek_v2_f32"));

TEST(Mla, TheKvCacheHoldsTheLatentOnly) {
  auto model = DecoderModel::load(fixture("deepseek_v3_f32"));
  ASSERT_TRUE(model.has_value()) << model.error().to_string();
  const ModelConfig& c = (*model)->config();
  const KvCacheConfig kv = (*model)->kv_cache_config(1);
  // (kv_lora_rank + qk_rope_head_dim) f32 values per token and layer: 3 × (32 + 8) × 4 bytes.
  EXPECT_EQ(KvCache::block_bytes(kv) / kv.block_size,
            c.n_layers * (c.mla.kv_lora_rank + c.mla.qk_rope_head_dim) * 4);
  EXPECT_EQ(KvCache::block_bytes(kv) / kv.block_size, 480);
  // The same under tp: every rank keeps the whole latent (it is shared by all heads).
  auto shard = DecoderModel::load(fixture("deepseek_v3_f32"), {}, ShardSpec{.tp_rank = 1, .tp_size = 2});
  ASSERT_TRUE(shard.has_value()) << shard.error().to_string();
  EXPECT_EQ(KvCache::block_bytes((*shard)->kv_cache_config(1)), KvCache::block_bytes(kv));
  // A dense GQA model: K and V per key/value head.
  auto dense = DecoderModel::load(fixture("qwen3_moe_f32"));
  ASSERT_TRUE(dense.has_value());
  const ModelConfig& d = (*dense)->config();
  EXPECT_EQ(KvCache::block_bytes((*dense)->kv_cache_config(1)) / 16,
            2 * d.n_layers * d.n_kv_heads * d.head_dim * 4);
}

}  // namespace
}  // namespace ponder::worker

namespace ponder::worker {
namespace {

// An FP8 block-quantized checkpoint (DeepSeek's format) loads into exactly the bf16 weights of
// its dequantized twin (tools/reference/make_fp8_fixture.py), whole and as a tp shard whose
// column slices start inside a block; so both give the same logits and greedy tokens.
std::vector<std::vector<char>> weight_bytes(const ModelWeights& w) {
  std::vector<std::vector<char>> out;
  for (Tensor* t : const_cast<ModelWeights&>(w).tensors()) {
    const char* p = static_cast<const char*>(t->data);
    out.emplace_back(p, p + t->nbytes());
  }
  return out;
}

TEST(Fp8Checkpoint, DequantizesToTheBf16TwinBitForBit) {
  for (const ShardSpec& shard : {ShardSpec{}, ShardSpec{.tp_rank = 1, .tp_size = 2}}) {
    auto fp8 = DecoderModel::load(fixture("deepseek_v3_fp8"), {}, shard);
    ASSERT_TRUE(fp8.has_value()) << fp8.error().to_string();
    auto bf16 = DecoderModel::load(fixture("deepseek_v3_fp8_dequant"), {}, shard);
    ASSERT_TRUE(bf16.has_value()) << bf16.error().to_string();
    EXPECT_EQ((*fp8)->config().fp8.block_rows, 16);
    EXPECT_EQ((*fp8)->weights().layers[0].wq.dtype, DType::kBF16);
    EXPECT_TRUE(weight_bytes((*fp8)->weights()) == weight_bytes((*bf16)->weights()))
        << "tp rank " << shard.tp_rank << " of " << shard.tp_size;
    // FP8 reads about half the bytes of bf16 for the quantized matrices.
    EXPECT_LT((*fp8)->weights().bytes_read, (*bf16)->weights().bytes_read * 3 / 4);
  }
}

TEST(Fp8Checkpoint, GivesTheSameGreedyTokensAsTheBf16Twin) {
  std::vector<std::vector<int32_t>> outputs[2];
  const char* names[] = {"deepseek_v3_fp8", "deepseek_v3_fp8_dequant"};
  const auto prompts =
      nlohmann::json::parse(std::ifstream(fixture(names[0]) + "/prompts.json"))["prompts"];
  for (int m = 0; m < 2; ++m) {
    auto model = DecoderModel::load(fixture(names[m]));
    ASSERT_TRUE(model.has_value()) << model.error().to_string();
    auto backend = CpuBackend::create({.n_threads = 1});
    ASSERT_TRUE(backend.has_value());
    auto cache = KvCache::create((*model)->kv_cache_config(64));
    ASSERT_TRUE(cache.has_value());
    BatchRunner runner(**model, **backend, *cache);
    std::vector<SequenceState> seqs(prompts.size());
    std::vector<SequenceState*> ptrs;
    for (size_t i = 0; i < prompts.size(); ++i) {
      seqs[i].tokens = prompts[i].get<std::vector<int32_t>>();
      ptrs.push_back(&seqs[i]);
    }
    const int64_t vocab = (*model)->config().vocab_size;
    std::vector<float> logits;
    for (int step = 0; step < 32; ++step) {
      ASSERT_TRUE(runner.step(ptrs, logits).ok());
      for (size_t i = 0; i < seqs.size(); ++i) {
        const float* row = logits.data() + i * vocab;
        seqs[i].tokens.push_back(int32_t(std::max_element(row, row + vocab) - row));
      }
    }
    for (SequenceState& s : seqs) outputs[m].push_back(s.tokens);
  }
  EXPECT_EQ(outputs[0], outputs[1]);
}

}  // namespace
}  // namespace ponder::worker
