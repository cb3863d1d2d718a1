// The CUDA backend's batch packing (host code, runs without a GPU): the arrays kernels index,
// padding for recorded decode steps, the prefill tiles, and the layouts it refuses.
#include <gtest/gtest.h>

#include "worker/backend/cuda/batch_pack.h"

namespace ponder::worker::cuda {
namespace {

struct Layout {
  std::vector<std::vector<int32_t>> tables;
  BatchLayout batch;
};

// Sequences given as (start_pos, n_tokens); tables of `blocks` ids each, distinct per sequence.
Layout make(const std::vector<std::pair<int32_t, int32_t>>& seqs, int32_t blocks) {
  Layout l;
  l.tables.resize(seqs.size());
  int32_t token = 0;
  for (size_t s = 0; s < seqs.size(); ++s) {
    for (int32_t b = 0; b < blocks; ++b) l.tables[s].push_back(static_cast<int32_t>(100 * s + b));
    l.batch.seqs.push_back({.token_begin = token,
                            .n_tokens = seqs[s].second,
                            .start_pos = seqs[s].first,
                            .block_table = l.tables[s]});
    for (int32_t i = 0; i < seqs[s].second; ++i) l.batch.positions.push_back(seqs[s].first + i);
    token += seqs[s].second;
  }
  return l;
}

TEST(BatchPack, ArraysDescribeAMixedBatch) {
  Layout l = make({{0, 5}, {20, 1}, {7, 3}}, 3);
  PackedBatch p;
  ASSERT_TRUE(pack_batch(l.batch, 9, 3, &p).ok());
  const auto& img = p.image;
  EXPECT_EQ(p.n_decode, 1);
  EXPECT_EQ(img[p.decode_seqs], 1);
  EXPECT_FALSE(p.all_decode);
  EXPECT_EQ(p.max_context, 21);
  const std::vector<int32_t> pos = {0, 1, 2, 3, 4, 20, 7, 8, 9};
  const std::vector<int32_t> seq = {0, 0, 0, 0, 0, 1, 2, 2, 2};
  for (int t = 0; t < 9; ++t) {
    EXPECT_EQ(img[p.token_pos + t], pos[t]);
    EXPECT_EQ(img[p.token_seq + t], seq[t]);
  }
  EXPECT_EQ(img[p.seq_ctx + 0], 5);
  EXPECT_EQ(img[p.seq_ctx + 1], 21);
  EXPECT_EQ(img[p.seq_ctx + 2], 10);
  for (int s = 0; s < 3; ++s)
    for (int b = 0; b < 3; ++b)
      EXPECT_EQ(img[p.block_tables + img[p.seq_table + s] + b], 100 * s + b);
  // 5 tokens × group 4 = 20 rows: one tile; 3 × 4 = 12: one tile. 5 × 16 = 80: two.
  EXPECT_EQ(p.prefill_tiles(4), (std::vector<int32_t>{0, 0, 2, 0}));
  EXPECT_EQ(p.prefill_tiles(16), (std::vector<int32_t>{0, 0, 0, 64, 2, 0}));
  EXPECT_TRUE(p.covers(16).ok());
  EXPECT_EQ(p.covers(4).code(), StatusCode::kInvalidArgument);  // 3 blocks of 4 < 21 tokens
}

TEST(BatchPack, PaddingAddsInertDecodeRowsAndKeepsOffsetsFixed) {
  Layout a = make({{3, 1}, {9, 1}, {40, 1}}, 3);
  Layout b = make({{4, 1}, {10, 1}, {41, 1}}, 4);  // one step later, longer tables
  PackedBatch pa, pb;
  ASSERT_TRUE(pack_batch(a.batch, 4, 4, &pa).ok());
  ASSERT_TRUE(pack_batch(b.batch, 4, 4, &pb).ok());
  EXPECT_TRUE(pa.all_decode);
  EXPECT_EQ(pa.n_decode, 4);
  EXPECT_EQ(pa.image[pa.token_seq + 3], -1);  // nothing stored for the padding row
  EXPECT_EQ(pa.image[pa.token_pos + 3], -1);
  EXPECT_EQ(pa.image[pa.seq_ctx + 3], 0);  // no keys: attention writes zeros
  EXPECT_EQ(pa.image[pa.seq_token_begin + 3], 3);
  // A recorded step reads every array at the same place in the next step's upload.
  for (auto off : {&PackedBatch::token_pos, &PackedBatch::token_seq, &PackedBatch::seq_ctx,
                   &PackedBatch::seq_table, &PackedBatch::decode_seqs, &PackedBatch::block_tables})
    EXPECT_EQ(pa.*off, pb.*off);
  EXPECT_GT(pb.image.size(), pa.image.size());
}

TEST(BatchPack, RefusesInconsistentLayouts) {
  PackedBatch p;
  Layout l = make({{0, 3}}, 1);
  l.batch.positions[1] = 7;
  EXPECT_EQ(pack_batch(l.batch, 3, 1, &p).code(), StatusCode::kInvalidArgument);
  Layout overlap = make({{0, 2}, {0, 2}}, 1);
  overlap.batch.seqs[1].token_begin = 1;
  EXPECT_EQ(pack_batch(overlap.batch, 4, 2, &p).code(), StatusCode::kInvalidArgument);
  Layout ok = make({{0, 2}}, 1);
  EXPECT_EQ(pack_batch(ok.batch, 4, 1, &p).code(), StatusCode::kInvalidArgument);  // 2 rows, 0 seqs
}

}  // namespace
}  // namespace ponder::worker::cuda
