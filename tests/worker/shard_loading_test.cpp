// Each rank of a tensor/pipeline-parallel run reads only its own shard's bytes from the
// checkpoint: a tp=4 rank about a quarter of the weights, a pipeline stage only its layers.
#include <gtest/gtest.h>

#include "worker/model/architecture.h"
#include "worker/model/model_weights.h"

namespace ponder::worker {
namespace {

const std::string kModel = std::string(PONDER_TEST_DATA_DIR) + "/models/qwen3_bf16_sharded";

size_t bytes_read(const ShardSpec& shard) {
  auto config = load_model_config(kModel);
  auto ckpt = Checkpoint::open(kModel);
  auto w = ModelWeights::load(*ckpt, *config, shard, {.huge_pages = false});
  EXPECT_TRUE(w.has_value()) << w.error().to_string();
  return w ? w->bytes_read : 0;
}

TEST(ShardLoading, TensorParallelRanksReadTheirShareOfTheBytes) {
  const size_t full = bytes_read({});
  size_t sum = 0;
  for (int r = 0; r < 4; ++r) {
    const size_t mine = bytes_read({.tp_rank = r, .tp_size = 4});
    // A quarter of every matrix; plus the replicated norms, and k/v heads shared by the two
    // ranks of each key/value group (this model has 2 kv heads for tp=4).
    EXPECT_LT(mine, full * 0.30) << "rank " << r;
    EXPECT_GT(mine, full * 0.24) << "rank " << r;
    sum += mine;
  }
  EXPECT_GE(sum, full);  // every byte is read by someone
}

TEST(ShardLoading, PipelineStagesReadOnlyTheirLayers) {
  auto config = load_model_config(kModel);
  const size_t full = bytes_read({});
  const size_t first = bytes_read({.layer_begin = 0, .layer_end = 2, .first_stage = true, .last_stage = false});
  const size_t last = bytes_read({.layer_begin = 2, .layer_end = 4, .first_stage = false, .last_stage = true});
  // With tied embeddings both ends would need the embedding matrix (lookup and lm_head).
  const size_t shared = config->tie_word_embeddings ? config->vocab_size * config->hidden_size * 2 : 0;
  EXPECT_EQ(first + last, full + shared);
  EXPECT_LT(first, full * 0.7);
  EXPECT_LT(last, full * 0.7);
}

}  // namespace
}  // namespace ponder::worker
