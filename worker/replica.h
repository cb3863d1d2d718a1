// Replica: one model replica spread over tp × ep × pp MPI ranks, as a StepExecutor for the engine.
// Every rank holds its shard (ShardSpec from the WorldLayout) and executes StepPlans; the leader
// (stage 0, tp rank 0) runs the Engine, which decides the plans and owns the sequences; the
// sampling rank (last stage, tp rank 0) samples and sends the tokens back to the leader. Created collectively by every rank of the world.
// Not thread-safe: each rank's engine thread drives it.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "collective/mpi_communicator.h"
#include "collective/world_layout.h"
#include "worker/backend/backend_factory.h"
#include "worker/engine/plan_runner.h"
#include "worker/engine/step_executor.h"
#include "worker/kv_cache.h"
#include "worker/model/decoder_model.h"
#include "worker/step_plan.h"

namespace ponder::worker {

// The WorldLayout of `world_size` ranks in replicas of tp × pp for this model (clear errors when
// the layout does not fit it).
Expected<collective::WorldLayout> model_layout(const ModelConfig& config, int world_size, int tp,
                                               int pp, const std::vector<int64_t>& stage_layers = {},
                                               int ep = 1);

struct ReplicaOptions {
  std::string model_dir;
  int tp = 1;
  int pp = 1;
  int ep = 1;  // expert parallelism: each stage is ep columns of tp ranks
  std::vector<int64_t> stage_layers;  // empty: even split
  int64_t kv_blocks = 1024;           // per rank, 16 tokens each
  DType kv_dtype = DType::kF32;       // or kBF16
  BackendChoice backend;  // CUDA: the device from the process environment, NCCL for TP/PP
  std::chrono::milliseconds timeout{60'000};  // every collective's deadline
  LoadOptions load;
};

class Replica final : public StepExecutor {
 public:
  static Expected<std::unique_ptr<Replica>> create(collective::MpiCommunicator& world,
                                                   const ReplicaOptions& options);

  const collective::RankRole& role() const { return role_; }
  bool is_leader() const { return role_.rank == role_.leader; }
  bool is_sampler() const { return replica_->rank() == sampler_rank_; }
  const DecoderModel& model() const { return *model_; }
  // Bytes this rank moved for the model (TP and PP collectives; plan broadcasts excluded).
  collective::CommStats model_comm_stats() const;
  // Of those, the expert-parallel group's (all-to-all and the all-gather of combined rows).
  collective::CommStats ep_comm_stats() const {
    return comms_.ep ? comms_.ep->stats() : collective::CommStats{};
  }

  // StepExecutor, on the leader: broadcasts the plan, runs its own part, and collects what the
  // sampling rank drew.
  const ModelConfig& config() const override { return model_->config(); }
  KvCache& cache() override { return *cache_; }
  int stages() const override { return options_.pp; }
  Expected<StepResult> step(const StepPlan& plan) override;

  // Leader only: tells the other ranks to return from serve().
  Status shutdown();
  // Leader only, between steps: every rank of the replica answers a barrier within the deadline.
  Status ping();
  // Every rank but the leader: executes plans until the leader shuts the replica down.
  Status serve();

  // On the sampling rank: the logits of each sequence's first sampled position (end of its
  // prompt), by sequence id, when runner().capture_first_logits is set (for parity tests).
  PlanRunner& runner() { return *runner_; }

 private:
  Replica() = default;
  Status broadcast_plan(const StepPlan& plan);  // leader
  Expected<StepPlan> receive_plan();            // every other rank
  Status send_result(const StepResult& result);
  Expected<StepResult> receive_result();

  ReplicaOptions options_;
  collective::RankRole role_;
  std::unique_ptr<collective::MpiCommunicator> replica_, tp_, pp_, ep_;
  ShardComms comms_;
  int sampler_rank_ = 0;  // in the replica communicator
  std::unique_ptr<DecoderModel> model_;
  std::unique_ptr<Backend> backend_;
  // NCCL over the tp_/pp_ groups when the backend is CUDA and NCCL is built; null otherwise.
  std::unique_ptr<collective::Communicator> tp_device_, pp_device_;
  std::unique_ptr<KvCache> cache_;
  std::unique_ptr<PlanRunner> runner_;
};

}  // namespace ponder::worker
