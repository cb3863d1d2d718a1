// The scheduler's pure steps, as tables: budgets, chunked prefill, admission order, preemption
// of the youngest, micro-batch formation; and the block pool's reference counts and prefix cache.
#include "worker/engine/scheduler.h"

#include <gtest/gtest.h>

#include "worker/engine/block_pool.h"

namespace ponder::worker {
namespace {

std::vector<std::pair<int64_t, int32_t>> runs_of(const ScheduleDecision& d) {
  std::vector<std::pair<int64_t, int32_t>> out;
  for (const auto& r : d.runs) out.push_back({r.id, r.n_tokens});
  return out;
}

TEST(Schedule, Table) {
  struct Case {
    const char* name;
    std::vector<SchedSeq> running, waiting;
    int32_t free_blocks;
    SchedulerLimits limits;
    std::vector<std::pair<int64_t, int32_t>> runs;
    std::vector<int64_t> preempted, admitted;
  };
  const SchedulerLimits lim{.block_size = 4, .token_budget = 10, .max_running = 8};
  const std::vector<Case> cases = {
      {"decode tokens first, then a prefill chunk within the budget",
       {{.id = 1, .n_tokens = 9, .n_computed = 8, .n_blocks = 3, .n_exclusive = 3},
        {.id = 2, .n_tokens = 5, .n_computed = 4, .n_blocks = 2, .n_exclusive = 2}},
       {{.id = 3, .n_tokens = 20}},
       10, lim, {{1, 1}, {2, 1}, {3, 8}}, {}, {3}},
      {"a long prompt is chunked over steps",
       {{.id = 3, .n_tokens = 20, .n_computed = 8, .n_blocks = 2, .n_exclusive = 2}},
       {}, 10, lim, {{3, 10}}, {}, {}},
      {"first come first served: a waiting request that does not fit blocks the queue",
       {}, {{.id = 4, .n_tokens = 30}, {.id = 5, .n_tokens = 2}}, 2, lim, {}, {}, {}},
      {"out of blocks: the youngest running sequence is preempted, nothing admitted",
       {{.id = 1, .n_tokens = 9, .n_computed = 8, .n_blocks = 2, .n_exclusive = 2},
        {.id = 2, .n_tokens = 5, .n_computed = 4, .n_blocks = 1, .n_exclusive = 1}},
       {{.id = 3, .n_tokens = 2}}, 0, lim, {{1, 1}}, {2}, {}},
      {"preempting a sequence whose blocks are all shared frees nothing: the next goes too",
       {{.id = 1, .n_tokens = 9, .n_computed = 8, .n_blocks = 2, .n_exclusive = 2},
        {.id = 2, .n_tokens = 5, .n_computed = 5, .n_blocks = 2, .n_exclusive = 1},
        {.id = 3, .n_tokens = 9, .n_computed = 8, .n_blocks = 2, .n_exclusive = 0}},
       {}, 0, lim, {{1, 1}}, {3, 2}, {}},
      {"a sequence that is itself the youngest preempts itself",
       {{.id = 1, .n_tokens = 9, .n_computed = 8, .n_blocks = 2, .n_exclusive = 2}},
       {}, 0, lim, {}, {1}, {}},
      {"the running cap stops admission",
       {{.id = 1, .n_tokens = 3, .n_computed = 2, .n_blocks = 1, .n_exclusive = 1}},
       {{.id = 2, .n_tokens = 2}}, 10, {.block_size = 4, .token_budget = 10, .max_running = 1},
       {{1, 1}}, {}, {}},
      {"unchunked (scoring) sequences wait for a step with room for all of them",
       {{.id = 1, .n_tokens = 3, .n_computed = 2, .n_blocks = 1, .n_exclusive = 1}},
       {{.id = 2, .n_tokens = 10, .unchunked = true}}, 10, lim, {{1, 1}}, {}, {}},
  };
  for (const Case& c : cases) {
    ScheduleDecision d = schedule(c.running, c.waiting, c.free_blocks, c.limits);
    EXPECT_EQ(runs_of(d), c.runs) << c.name;
    EXPECT_EQ(d.preempted, c.preempted) << c.name;
    EXPECT_EQ(d.admitted, c.admitted) << c.name;
  }
}

TEST(Schedule, NewBlocksAreCounted) {
  ScheduleDecision d = schedule({{.id = 1, .n_tokens = 9, .n_computed = 8, .n_blocks = 2}}, {}, 5,
                                {.block_size = 4});
  ASSERT_EQ(d.runs.size(), 1u);
  EXPECT_EQ(d.runs[0].new_blocks, 1);  // position 8 starts block 3
  EXPECT_EQ(blocks_for(0, 16), 0);
  EXPECT_EQ(blocks_for(17, 16), 2);
}

TEST(MicroBatches, SplitByTokensKeepingOrder) {
  std::vector<ScheduledRun> runs = {{1, 100, 0}, {2, 1, 0}, {3, 1, 0}, {4, 100, 0}};
  auto mbs = form_micro_batches(runs, 2);
  ASSERT_EQ(mbs.size(), 2u);
  EXPECT_EQ(mbs[0].size(), 2u);  // 101 tokens
  EXPECT_EQ(mbs[1].size(), 2u);  // 101 tokens
  EXPECT_EQ(mbs[1][0].id, 3);
  EXPECT_EQ(form_micro_batches(runs, 1).size(), 1u);
  EXPECT_EQ(form_micro_batches({{1, 5, 0}}, 4).size(), 1u);
  auto three = form_micro_batches({{1, 1, 0}, {2, 1, 0}, {3, 1, 0}}, 3);
  EXPECT_EQ(three.size(), 3u);
}

TEST(BlockPool, ReferenceCountsAndLruPrefixCache) {
  BlockPool pool(3, 2);
  int32_t a = *pool.allocate(), b = *pool.allocate();
  EXPECT_EQ(pool.blocks_free(), 1);
  const std::vector<int32_t> toks = {7, 8};
  BlockHash h = BlockPool::hash_block(0, toks);
  pool.cache(a, h, toks);
  pool.retain(a);  // a fork shares it
  pool.release(a);
  EXPECT_EQ(pool.refcount(a), 1);
  pool.release(a);  // free, but still cached
  EXPECT_EQ(pool.blocks_free(), 2);
  auto hit = pool.lookup(h, toks);
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(*hit, a);
  EXPECT_EQ(pool.refcount(a), 1);
  EXPECT_FALSE(pool.lookup(h, std::vector<int32_t>{7, 9}).has_value());  // same hash, other tokens
  EXPECT_FALSE(pool.lookup(BlockPool::hash_block(h, toks), toks).has_value());  // other parent
  pool.release(a);
  pool.release(b);
  // The least recently freed block goes first: the third (never used), then a, then b.
  int32_t c = *pool.allocate();
  EXPECT_NE(c, a);
  EXPECT_NE(c, b);
  EXPECT_EQ(*pool.allocate(), a);  // evicts a's cached contents
  EXPECT_FALSE(pool.lookup(h, toks).has_value());
  EXPECT_EQ(*pool.allocate(), b);
  EXPECT_FALSE(pool.allocate().has_value());
  EXPECT_EQ(pool.cache_hits(), 1);
}

}  // namespace
}  // namespace ponder::worker
