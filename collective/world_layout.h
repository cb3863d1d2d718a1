// WorldLayout: how the ranks of a job split into replicas, pipeline stages, expert-parallel
// columns and tensor-parallel groups, and which device each rank uses. Pure arithmetic: no MPI,
// unit-tested alone. Rank order: rank = replica × (tp × ep × pp) + stage × (tp × ep) +
// ep_rank × tp + tp_rank (TP groups are neighbours, so a TP group stays inside a node when ranks
// fill nodes in order). A stage has ep columns of tp ranks; each column holds the whole stage but
// for the routed experts, of which it holds 1/ep (its EP group: the ranks of the stage with its
// tp rank).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/process_env.h"
#include "common/status.h"

namespace ponder::collective {

struct LayoutSpec {
  int world_size = 1;
  int tp = 1;
  int pp = 1;
  int ep = 1;  // expert parallelism: the routed experts of each MoE layer over ep columns
  // Model facts the layout must respect.
  int64_t n_experts = 0;  // routed experts per MoE layer (0: a dense model)
  int64_t n_heads = 1;
  int64_t n_kv_heads = 1;
  int64_t n_layers = 1;
  int64_t hidden_size = 1;
  int64_t intermediate_size = 1;
  // Layers per stage; empty: as even as possible, earlier stages take the remainder.
  std::vector<int64_t> stage_layers;
};

struct RankRole {
  int rank = 0;
  int replica = 0;
  int stage = 0;
  int tp_rank = 0;
  int ep_rank = 0;
  int64_t layer_begin = 0;  // [layer_begin, layer_end) run on this rank's stage
  int64_t layer_end = 0;
  int leader = 0;             // world rank of the replica's stage 0, tp rank 0
  std::vector<int> tp_group;  // world ranks of this rank's TP group, by tp rank
  std::vector<int> ep_group;  // world ranks of this stage with this tp rank, by ep rank
  std::vector<int> pp_group;  // world ranks with this tp and ep rank in this replica, by stage
  bool first_stage() const { return stage == 0; }
};

class WorldLayout {
 public:
  static Expected<WorldLayout> create(const LayoutSpec& spec);

  int replicas() const { return replicas_; }
  int tp() const { return spec_.tp; }
  int pp() const { return spec_.pp; }
  int ep() const { return spec_.ep; }
  const std::vector<int64_t>& stage_layers() const { return stage_layers_; }
  RankRole role(int rank) const;

 private:
  LayoutSpec spec_;
  int replicas_ = 1;
  std::vector<int64_t> stage_layers_;
};

// The CUDA device this task should use: with CUDA_VISIBLE_DEVICES naming one device, device 0;
// otherwise the task's index on its node (SLURM_LOCALID, else the MPI local rank) among the
// visible devices (`devices_on_node` when CUDA_VISIBLE_DEVICES is unset). Never rank % gpus.
Expected<int> choose_device(const ProcessEnv& env, int devices_on_node);

}  // namespace ponder::collective
