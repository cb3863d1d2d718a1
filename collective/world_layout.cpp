// Layout arithmetic and device choice.
#include "collective/world_layout.h"

#include "common/strings.h"

namespace ponder::collective {

Expected<WorldLayout> WorldLayout::create(const LayoutSpec& s) {
  if (s.tp < 1 || s.pp < 1 || s.ep < 1)
    return error(StatusCode::kInvalidArgument, "tp (%d), pp (%d) and ep (%d) must be >= 1", s.tp,
                 s.pp, s.ep);
  if (s.world_size % (s.tp * s.ep * s.pp) != 0)
    return error(StatusCode::kInvalidArgument,
                 "world size %d is not a multiple of tp × ep × pp = %d × %d × %d = %d",
                 s.world_size, s.tp, s.ep, s.pp, s.tp * s.ep * s.pp);
  if (s.ep > 1 && s.n_experts == 0)
    return error(StatusCode::kInvalidArgument,
                 "ep=%d: expert parallelism needs a mixture-of-experts model", s.ep);
  if (s.ep > 1 && s.n_experts % s.ep != 0)
    return error(StatusCode::kInvalidArgument, "ep=%d does not divide the model's %lld experts",
                 s.ep, (long long)s.n_experts);
  if (s.n_heads % s.tp != 0)
    return error(StatusCode::kInvalidArgument,
                 "tp=%d does not divide the model's %lld attention heads", s.tp, (long long)s.n_heads);
  if (s.n_kv_heads % s.tp != 0 && s.tp % s.n_kv_heads != 0)
    return error(StatusCode::kInvalidArgument,
                 "tp=%d and the model's %lld key/value heads do not divide one another", s.tp,
                 (long long)s.n_kv_heads);
  if (s.hidden_size % s.tp != 0)
    return error(StatusCode::kInvalidArgument, "tp=%d does not divide hidden_size %lld", s.tp,
                 (long long)s.hidden_size);
  if (s.intermediate_size % s.tp != 0)
    return error(StatusCode::kInvalidArgument, "tp=%d does not divide intermediate_size %lld",
                 s.tp, (long long)s.intermediate_size);
  if (s.pp > s.n_layers)
    return error(StatusCode::kInvalidArgument, "pp=%d stages but the model has only %lld layers",
                 s.pp, (long long)s.n_layers);
  WorldLayout layout;
  layout.spec_ = s;
  layout.replicas_ = s.world_size / (s.tp * s.ep * s.pp);
  if (!s.stage_layers.empty()) {
    if (static_cast<int>(s.stage_layers.size()) != s.pp)
      return error(StatusCode::kInvalidArgument, "%zu stage sizes given for pp=%d",
                   s.stage_layers.size(), s.pp);
    int64_t total = 0;
    for (int64_t n : s.stage_layers) {
      if (n < 1) return error(StatusCode::kInvalidArgument, "every stage needs at least one layer");
      total += n;
    }
    if (total != s.n_layers)
      return error(StatusCode::kInvalidArgument, "stage sizes add up to %lld layers, the model has %lld",
                   (long long)total, (long long)s.n_layers);
    layout.stage_layers_ = s.stage_layers;
  } else {
    for (int st = 0; st < s.pp; ++st)
      layout.stage_layers_.push_back(s.n_layers / s.pp + (st < s.n_layers % s.pp ? 1 : 0));
  }
  return layout;
}

RankRole WorldLayout::role(int rank) const {
  const int tp = spec_.tp, per_stage = tp * spec_.ep, per_replica = per_stage * spec_.pp;
  RankRole r;
  r.rank = rank;
  r.replica = rank / per_replica;
  r.stage = (rank % per_replica) / per_stage;
  r.ep_rank = (rank % per_stage) / tp;
  r.tp_rank = rank % tp;
  const int base = r.replica * per_replica, stage_base = base + r.stage * per_stage;
  r.leader = base;
  for (int t = 0; t < tp; ++t) r.tp_group.push_back(stage_base + r.ep_rank * tp + t);
  for (int e = 0; e < spec_.ep; ++e) r.ep_group.push_back(stage_base + e * tp + r.tp_rank);
  for (int st = 0; st < spec_.pp; ++st)
    r.pp_group.push_back(base + st * per_stage + r.ep_rank * tp + r.tp_rank);
  for (int st = 0; st < r.stage; ++st) r.layer_begin += stage_layers_[st];
  r.layer_end = r.layer_begin + stage_layers_[r.stage];
  return r;
}

Expected<int> choose_device(const ProcessEnv& env, int devices_on_node) {
  int visible = devices_on_node;
  if (env.cuda_visible_devices) {
    visible = 0;
    for (const std::string& id : split(*env.cuda_visible_devices, ','))
      if (!trim(id).empty()) ++visible;
    if (visible == 1) return 0;  // the scheduler gave this task its one GPU
  }
  if (visible < 1) return error(StatusCode::kUnavailable, "no GPU is visible to this task");
  const int local = env.local_index();
  if (local >= visible)
    return error(StatusCode::kInvalidArgument,
                 "task %d on this node but only %d GPUs are visible (CUDA_VISIBLE_DEVICES=%s); "
                 "start at most one task per GPU",
                 local, visible, env.cuda_visible_devices.value_or("<unset>").c_str());
  return local;
}

}  // namespace ponder::collective
