// Replica set-up (layout, communicators, shard loading) and the plan/execute loop.
#include "worker/replica.h"

#include <algorithm>

#include "common/check.h"
#include "common/log.h"
#include "worker/model/architecture.h"

namespace ponder::worker {
namespace {
constexpr int kTagResultSize = 12, kTagSampled = 13, kTagScores = 14, kTagTop = 15;
}  // namespace

Expected<collective::WorldLayout> model_layout(const ModelConfig& c, int world_size, int tp, int pp,
                                               const std::vector<int64_t>& stage_layers, int ep) {
  if (c.is_moe() && tp > 0 && (c.moe.ffn % tp != 0 || c.moe.shared_ffn % tp != 0))
    return error(StatusCode::kInvalidArgument,
                 "tp %d does not divide moe_intermediate_size %lld (shared experts: %lld rows)", tp,
                 (long long)c.moe.ffn, (long long)c.moe.shared_ffn);
  return collective::WorldLayout::create({.world_size = world_size,
                                          .tp = tp,
                                          .pp = pp,
                                          .ep = ep,
                                          .n_experts = c.moe.n_experts,
                                          .n_heads = c.n_heads,
                                          .n_kv_heads = c.n_kv_heads,
                                          .n_layers = c.n_layers,
                                          .hidden_size = c.hidden_size,
                                          .intermediate_size = c.intermediate_size,
                                          .stage_layers = stage_layers});
}

Expected<std::unique_ptr<Replica>> Replica::create(collective::MpiCommunicator& world,
                                                   const ReplicaOptions& options) {
  PONDER_ASSIGN_OR_RETURN(ModelConfig config, load_model_config(options.model_dir));
  PONDER_ASSIGN_OR_RETURN(auto layout, model_layout(config, world.size(), options.tp, options.pp,
                                                    options.stage_layers, options.ep));
  std::unique_ptr<Replica> r(new Replica());
  r->options_ = options;
  r->role_ = layout.role(world.rank());
  const auto& role = r->role_;
  auto deadline = collective::deadline_in(options.timeout);
  PONDER_ASSIGN_OR_RETURN(r->replica_, world.split(role.replica, world.rank(), deadline));
  const int tp = options.tp, ep = options.ep, pp = options.pp;
  PONDER_ASSIGN_OR_RETURN(
      r->tp_, world.split((role.replica * pp + role.stage) * ep + role.ep_rank, role.tp_rank, deadline));
  PONDER_ASSIGN_OR_RETURN(
      r->ep_, world.split((role.replica * pp + role.stage) * tp + role.tp_rank, role.ep_rank, deadline));
  PONDER_ASSIGN_OR_RETURN(
      r->pp_, world.split((role.replica * ep + role.ep_rank) * tp + role.tp_rank, role.stage, deadline));
  r->sampler_rank_ = (pp - 1) * tp * ep;  // last stage, ep column 0, tp rank 0

  ShardSpec shard{.tp_rank = role.tp_rank,
                  .tp_size = options.tp,
                  .ep_rank = role.ep_rank,
                  .ep_size = options.ep,
                  .layer_begin = role.layer_begin,
                  .layer_end = role.layer_end,
                  .first_stage = role.stage == 0,
                  .last_stage = role.stage == options.pp - 1};
  PONDER_ASSIGN_OR_RETURN(r->model_, DecoderModel::load(options.model_dir, options.load, shard));
  PONDER_ASSIGN_OR_RETURN(r->backend_, create_backend(options.backend));
  PONDER_RETURN_IF_ERROR(r->model_->move_to(*r->backend_));
  PONDER_ASSIGN_OR_RETURN(KvCache cache, KvCache::create(r->model_->kv_cache_config(options.kv_blocks, 16, options.kv_dtype),
                                                         r->backend_->memory()));
  if (options.tp > 1) {
    PONDER_ASSIGN_OR_RETURN(r->tp_device_, create_device_communicator(*r->backend_, *r->tp_, deadline));
  }
  if (options.pp > 1) {
    PONDER_ASSIGN_OR_RETURN(r->pp_device_, create_device_communicator(*r->backend_, *r->pp_, deadline));
  }
  auto group = [](int size, auto& device, auto& host) -> collective::Communicator* {
    return size == 1 ? nullptr : device ? device.get() : host.get();
  };
  // MoE layers run on the CPU backend only (supports()): the EP group stays a host communicator.
  std::unique_ptr<collective::Communicator> no_device;
  r->comms_ = {.tp = group(options.tp, r->tp_device_, r->tp_),
               .pp = group(options.pp, r->pp_device_, r->pp_),
               .ep = group(options.ep, no_device, r->ep_),
               .timeout = options.timeout};
  r->cache_ = std::make_unique<KvCache>(std::move(cache));
  r->runner_ = std::make_unique<PlanRunner>(*r->model_, *r->backend_, *r->cache_, r->comms_,
                                            r->replica_->rank() == r->sampler_rank_);
  PONDER_LOG(kInfo, "replica",
             "replica %d stage %d ep %d/%d tp %d/%d: layers [%lld, %lld), %zu weight bytes read, %s backend (%s)",
             role.replica, role.stage, role.ep_rank, options.ep, role.tp_rank, options.tp,
             (long long)role.layer_begin,
             (long long)role.layer_end, r->model_->weights().bytes_read,
             std::string(r->backend_->name()).c_str(), r->backend_->description().c_str());
  // Nobody starts serving before every shard is loaded.
  PONDER_RETURN_IF_ERROR(world.barrier(collective::deadline_in(options.timeout)));
  return r;
}

collective::CommStats Replica::model_comm_stats() const {
  collective::CommStats total;
  for (const auto* c : {comms_.tp, comms_.pp, comms_.ep}) {
    if (c == nullptr) continue;
    const collective::CommStats& s = c->stats();
    total.all_reduce_bytes += s.all_reduce_bytes;
    total.all_gather_bytes += s.all_gather_bytes;
    total.reduce_scatter_bytes += s.reduce_scatter_bytes;
    total.broadcast_bytes += s.broadcast_bytes;
    total.send_bytes += s.send_bytes;
    total.recv_bytes += s.recv_bytes;
    total.all_to_all_bytes += s.all_to_all_bytes;
    total.calls += s.calls;
  }
  return total;
}

// Size first, then the bytes: a broadcast needs the length on every rank.
Status Replica::broadcast_plan(const StepPlan& plan) {
  std::vector<uint8_t> bytes = plan.encode();
  uint64_t size = bytes.size();
  PONDER_RETURN_IF_ERROR(
      replica_->broadcast(&size, sizeof(size), 0, collective::deadline_in(options_.timeout)));
  return replica_->broadcast(bytes.data(), size, 0, collective::deadline_in(options_.timeout));
}

Expected<StepPlan> Replica::receive_plan() {
  uint64_t size = 0;
  PONDER_RETURN_IF_ERROR(
      replica_->broadcast(&size, sizeof(size), 0, collective::deadline_in(options_.timeout)));
  std::vector<uint8_t> bytes(size);
  PONDER_RETURN_IF_ERROR(
      replica_->broadcast(bytes.data(), size, 0, collective::deadline_in(options_.timeout)));
  return StepPlan::decode(bytes);
}

Status Replica::send_result(const StepResult& result) {
  auto deadline = [&] { return collective::deadline_in(options_.timeout); };
  uint64_t sizes[3] = {result.sampled.size(), result.scores.size(), result.top.size()};
  PONDER_RETURN_IF_ERROR(replica_->send(sizes, sizeof(sizes), 0, kTagResultSize, deadline()));
  if (sizes[0] > 0)
    PONDER_RETURN_IF_ERROR(replica_->send(result.sampled.data(), sizes[0] * sizeof(SampledToken), 0,
                                          kTagSampled, deadline()));
  if (sizes[1] > 0)
    PONDER_RETURN_IF_ERROR(replica_->send(result.scores.data(), sizes[1] * sizeof(ScoredToken), 0,
                                          kTagScores, deadline()));
  if (sizes[2] > 0)
    PONDER_RETURN_IF_ERROR(replica_->send(result.top.data(), sizes[2] * sizeof(TokenLogprob), 0,
                                          kTagTop, deadline()));
  return {};
}

Expected<StepResult> Replica::receive_result() {
  auto deadline = [&] { return collective::deadline_in(options_.timeout); };
  StepResult result;
  uint64_t sizes[3] = {0, 0, 0};
  PONDER_RETURN_IF_ERROR(replica_->recv(sizes, sizeof(sizes), sampler_rank_, kTagResultSize, deadline()));
  result.sampled.resize(sizes[0]);
  result.scores.resize(sizes[1]);
  result.top.resize(sizes[2]);
  if (sizes[0] > 0)
    PONDER_RETURN_IF_ERROR(replica_->recv(result.sampled.data(), sizes[0] * sizeof(SampledToken),
                                          sampler_rank_, kTagSampled, deadline()));
  if (sizes[1] > 0)
    PONDER_RETURN_IF_ERROR(replica_->recv(result.scores.data(), sizes[1] * sizeof(ScoredToken),
                                          sampler_rank_, kTagScores, deadline()));
  if (sizes[2] > 0)
    PONDER_RETURN_IF_ERROR(replica_->recv(result.top.data(), sizes[2] * sizeof(TokenLogprob),
                                          sampler_rank_, kTagTop, deadline()));
  return result;
}

Expected<StepResult> Replica::step(const StepPlan& plan) {
  PONDER_CHECK(is_leader(), "only the leader steps the replica");
  PONDER_RETURN_IF_ERROR(broadcast_plan(plan));
  PONDER_ASSIGN_OR_RETURN(StepResult result, runner_->run(plan));
  if (is_sampler()) return result;
  return receive_result();
}

Status Replica::serve() {
  PONDER_CHECK(!is_leader(), "the leader drives the replica; it does not serve");
  while (true) {
    PONDER_ASSIGN_OR_RETURN(StepPlan plan, receive_plan());
    if (plan.shutdown) return {};
    if (plan.ping) {
      PONDER_RETURN_IF_ERROR(replica_->barrier(collective::deadline_in(options_.timeout)));
      continue;
    }
    PONDER_ASSIGN_OR_RETURN(StepResult result, runner_->run(plan));
    if (is_sampler()) PONDER_RETURN_IF_ERROR(send_result(result));
  }
}

Status Replica::ping() {
  PONDER_CHECK(is_leader(), "only the leader pings a replica");
  PONDER_RETURN_IF_ERROR(broadcast_plan(StepPlan{.ping = true}));
  return replica_->barrier(collective::deadline_in(options_.timeout));
}

Status Replica::shutdown() {
  PONDER_CHECK(is_leader(), "only the leader shuts a replica down");
  return broadcast_plan(StepPlan{.shutdown = true});
}

}  // namespace ponder::worker
