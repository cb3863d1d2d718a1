// WorldLayout arithmetic and device choice, without MPI.
#include "collective/world_layout.h"

#include <gtest/gtest.h>

namespace ponder::collective {
namespace {

LayoutSpec spec(int world, int tp, int pp) {
  return {.world_size = world, .tp = tp, .pp = pp, .n_heads = 8, .n_kv_heads = 2, .n_layers = 5,
          .hidden_size = 64, .intermediate_size = 128};
}

TEST(WorldLayout, RanksMapToReplicaStageAndTpRank) {
  auto layout = WorldLayout::create(spec(8, 2, 2));
  ASSERT_TRUE(layout.has_value()) << layout.error().to_string();
  EXPECT_EQ(layout->replicas(), 2);
  EXPECT_EQ(layout->stage_layers(), (std::vector<int64_t>{3, 2}));
  RankRole r = layout->role(7);  // replica 1, stage 1, tp rank 1
  EXPECT_EQ(r.replica, 1);
  EXPECT_EQ(r.stage, 1);
  EXPECT_EQ(r.tp_rank, 1);
  EXPECT_EQ(r.leader, 4);
  EXPECT_EQ(r.tp_group, (std::vector<int>{6, 7}));
  EXPECT_EQ(r.pp_group, (std::vector<int>{5, 7}));
  EXPECT_EQ(r.layer_begin, 3);
  EXPECT_EQ(r.layer_end, 5);
  RankRole r0 = layout->role(0);
  EXPECT_EQ(r0.layer_begin, 0);
  EXPECT_EQ(r0.layer_end, 3);
  EXPECT_TRUE(r0.first_stage());
}

TEST(WorldLayout, ExpertParallelColumnsSitBetweenTpAndStages) {
  LayoutSpec s = spec(16, 2, 2);
  s.ep = 2;
  s.n_experts = 8;
  auto layout = WorldLayout::create(s);
  ASSERT_TRUE(layout.has_value()) << layout.error().to_string();
  EXPECT_EQ(layout->replicas(), 2);
  // Rank 13 = replica 1 (8..15), stage 1 (12..15), ep column 0 (12, 13), tp rank 1.
  RankRole r = layout->role(13);
  EXPECT_EQ(r.replica, 1);
  EXPECT_EQ(r.stage, 1);
  EXPECT_EQ(r.ep_rank, 0);
  EXPECT_EQ(r.tp_rank, 1);
  EXPECT_EQ(r.leader, 8);
  EXPECT_EQ(r.tp_group, (std::vector<int>{12, 13}));
  EXPECT_EQ(r.ep_group, (std::vector<int>{13, 15}));
  EXPECT_EQ(r.pp_group, (std::vector<int>{9, 13}));
  EXPECT_EQ(layout->role(10).ep_rank, 1);
  auto msg = [](LayoutSpec bad) { return WorldLayout::create(bad).error().message(); };
  s.n_experts = 6;
  s.ep = 4;
  s.world_size = 16;
  s.pp = 1;
  EXPECT_NE(msg(s).find("ep=4 does not divide the model's 6 experts"), std::string::npos);
  s.n_experts = 0;
  EXPECT_NE(msg(s).find("needs a mixture-of-experts model"), std::string::npos);
}

TEST(WorldLayout, StageSizesCanBeGiven) {
  LayoutSpec s = spec(3, 1, 3);
  s.stage_layers = {1, 3, 1};
  auto layout = WorldLayout::create(s);
  ASSERT_TRUE(layout.has_value());
  EXPECT_EQ(layout->role(1).layer_begin, 1);
  EXPECT_EQ(layout->role(1).layer_end, 4);
  s.stage_layers = {1, 1, 1};
  EXPECT_NE(WorldLayout::create(s).error().message().find("add up to 3 layers, the model has 5"),
            std::string::npos);
}

TEST(WorldLayout, InvalidLayoutsAreClearErrors) {
  auto msg = [](LayoutSpec s) { return WorldLayout::create(s).error().message(); };
  EXPECT_NE(msg(spec(6, 4, 1)).find("world size 6 is not a multiple of tp × ep × pp"), std::string::npos);
  EXPECT_NE(msg(spec(3, 3, 1)).find("tp=3 does not divide the model's 8 attention heads"), std::string::npos);
  EXPECT_NE(msg(spec(6, 1, 6)).find("pp=6 stages but the model has only 5 layers"), std::string::npos);
  LayoutSpec kv = spec(8, 8, 1);
  kv.n_kv_heads = 3;
  kv.n_heads = 24;
  EXPECT_NE(msg(kv).find("key/value heads"), std::string::npos);
  // tp > n_kv_heads with tp a multiple of it is fine: kv heads are replicated.
  EXPECT_TRUE(WorldLayout::create(spec(4, 4, 1)).has_value());
}

TEST(ChooseDevice, HonoursSlurmLocalIdAndCudaVisibleDevices) {
  ProcessEnv env;
  env.cuda_visible_devices = "3";
  env.slurm_localid = 2;
  EXPECT_EQ(*choose_device(env, 8), 0);  // one visible GPU: device 0, whatever the task index
  env.cuda_visible_devices = "0,1,2,3";
  EXPECT_EQ(*choose_device(env, 8), 2);  // SLURM_LOCALID
  env.slurm_localid.reset();
  env.ompi_local_rank = 1;
  EXPECT_EQ(*choose_device(env, 8), 1);  // mpirun's local rank
  env.cuda_visible_devices.reset();
  env.ompi_local_rank = 5;
  EXPECT_EQ(*choose_device(env, 8), 5);
  EXPECT_EQ(choose_device(env, 4).error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(choose_device(ProcessEnv{}, 0).error().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace ponder::collective
