// The router's choice as a table: least outstanding work plus uncached prompt tokens.
#include "coordinator/router/router.h"

#include <gtest/gtest.h>

namespace ponder::coordinator {
namespace {

TEST(RouterTest, LeastOutstandingWorkWithPrefixAffinity) {
  struct Case {
    const char* what;
    std::vector<ReplicaLoad> replicas;
    int64_t prompt;
    std::optional<size_t> want;
  };
  const std::vector<Case> cases = {
      {"none", {}, 10, std::nullopt},
      {"all unhealthy", {{false, 0, 0}, {false, 0, 0}}, 10, std::nullopt},
      {"least loaded", {{true, 500, 0}, {true, 100, 0}, {true, 300, 0}}, 10, 1},
      {"ties go to the first", {{true, 100, 0}, {true, 100, 0}}, 10, 0},
      {"unhealthy skipped", {{false, 0, 0}, {true, 900, 0}}, 10, 1},
      {"cached prefix wins when it saves more than the extra load",
       {{true, 100, 0}, {true, 300, 512}}, 600, 1},
      {"cached prefix loses when the replica is much busier",
       {{true, 100, 0}, {true, 2000, 512}}, 600, 0},
      {"cache larger than the prompt counts as the prompt", {{true, 50, 0}, {true, 60, 4096}}, 64, 1},
  };
  for (const Case& c : cases) EXPECT_EQ(choose_replica(c.replicas, c.prompt), c.want) << c.what;
}

TEST(RouterTest, SamplesStayTogetherUnlessTheyWouldWaitForASlot) {
  struct Case {
    const char* what;
    std::vector<ReplicaLoad> replicas;  // healthy, outstanding, cached, free slots
    int32_t n;
    std::vector<SamplePlacement> want;
  };
  const std::vector<Case> cases = {
      {"none healthy", {{false, 0, 0, 8}}, 4, {}},
      {"fits on the pick", {{true, 0, 0, 8}, {true, 0, 0, 8}}, 4, {{0, 4}}},
      {"exactly fits", {{true, 0, 0, 4}, {true, 0, 0, 8}}, 4, {{0, 4}}},
      {"overflow goes to the other replica", {{true, 0, 0, 3}, {true, 10, 0, 8}}, 8, {{0, 3}, {1, 5}}},
      {"overflow fills the cheapest others first",
       {{true, 0, 0, 2}, {true, 900, 0, 8}, {true, 100, 0, 1}}, 6, {{0, 2}, {2, 1}, {1, 3}}},
      {"no room anywhere: all wait on the pick", {{true, 0, 0, 0}, {true, 50, 0, 0}}, 4, {{0, 4}}},
      {"what fits nowhere stays on the pick", {{true, 0, 0, 1}, {true, 50, 0, 2}}, 6, {{0, 4}, {1, 2}}},
      {"a full pick gives everything away", {{true, 0, 0, 0}, {true, 50, 0, 8}}, 4, {{1, 4}}},
      {"unhealthy replicas take nothing", {{true, 0, 0, 1}, {false, 0, 0, 8}}, 3, {{0, 3}}},
      {"n = 1 is one placement", {{true, 0, 0, 0}, {true, 50, 0, 8}}, 1, {{1, 1}}},
  };
  for (const Case& c : cases) EXPECT_EQ(place_samples(c.replicas, 64, c.n), c.want) << c.what;
}

TEST(RouterTest, PrefixIndexMatchesLeadingBlocksAndEvictsLeastRecentlyUsed) {
  std::vector<int32_t> a(64), b(64);
  for (int i = 0; i < 64; ++i) a[i] = b[i] = i;
  b[40] = 999;  // differs in the third block
  auto ha = prompt_block_hashes(a, 16), hb = prompt_block_hashes(b, 16);
  ASSERT_EQ(ha.size(), 4u);
  EXPECT_EQ(ha[0], hb[0]);
  EXPECT_EQ(ha[1], hb[1]);
  EXPECT_NE(ha[2], hb[2]);
  EXPECT_NE(ha[3], hb[3]);  // chained: everything after a difference differs
  EXPECT_TRUE(prompt_block_hashes(std::vector<int32_t>(15, 1), 16).empty());

  PrefixIndex index(/*capacity=*/5);
  index.record(ha);
  EXPECT_EQ(index.matched_blocks(ha), 4);
  EXPECT_EQ(index.matched_blocks(hb), 2);
  index.record(hb);  // shares 2 blocks, adds 2: one over capacity evicts ha's oldest unshared block
  EXPECT_EQ(index.matched_blocks(hb), 4);
  EXPECT_EQ(index.matched_blocks(ha), 2);
  index.clear();
  EXPECT_EQ(index.matched_blocks(ha), 0);
}

}  // namespace
}  // namespace ponder::coordinator
