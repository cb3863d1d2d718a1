#include "slurm/job_layout.h"

#include "common/strings.h"

namespace ponder::slurm {

std::vector<int> JobLayout::nodes_of_replica(int replica) const {
  std::vector<int> out;
  const int first = replica * ranks_per_replica();
  for (int r = first; r < first + ranks_per_replica(); ++r)
    if (out.empty() || out.back() != node_of(r)) out.push_back(node_of(r));
  return out;
}

std::string JobLayout::describe(const std::vector<std::string>& node_names) const {
  auto node_name = [&](int i) {
    return i < static_cast<int>(node_names.size()) ? node_names[i] : strformat("node %d", i + 1);
  };
  auto span = [](int a, int b) { return a == b ? std::to_string(a) : strformat("%d-%d", a, b); };
  const std::string ep = shape.ep > 1 ? strformat(" x ep %d", shape.ep) : "";
  std::string out = strformat("%d rank%s = %d replica%s x tp %d x pp %d%s on %d node%s x %d task%s, blocks of "
                              "consecutive ranks per node\n",
                              ranks(), ranks() == 1 ? "" : "s", shape.replicas, shape.replicas == 1 ? "" : "s",
                              shape.tp, shape.pp, ep.c_str(), nodes, nodes == 1 ? "" : "s", tasks_per_node,
                              tasks_per_node == 1 ? "" : "s");
  const int width = shape.tp * shape.ep;  // a stage: ep columns of tp ranks
  for (int rep = 0; rep < shape.replicas; ++rep)
    for (int stage = 0; stage < shape.pp; ++stage) {
      const int first = rep * ranks_per_replica() + stage * width;
      const int last = first + width - 1;
      // The nodes of this TP group; more than one (joined by '+') means TP over the network.
      std::vector<std::string> on;
      for (int r = first; r <= last; ++r)
        if (on.empty() || on.back() != node_name(node_of(r))) on.push_back(node_name(node_of(r)));
      const std::string where = join(on, " + ");
      out += strformat("  replica %d stage %d: rank%s %s (tp %s%s) on %s\n", rep, stage, first == last ? "" : "s",
                       span(first, last).c_str(), span(0, shape.tp - 1).c_str(),
                       shape.ep > 1 ? strformat(" x ep %s", span(0, shape.ep - 1).c_str()).c_str() : "",
                       where.c_str());
    }
  return out;
}

Expected<JobLayout> plan_job_layout(const SlurmOptions& slurm, const JobShape& shape) {
  JobLayout layout{.shape = shape, .nodes = slurm.nodes};
  const int ranks = shape.replicas * shape.tp * shape.pp * shape.ep;
  const std::string product =
      shape.ep > 1 ? strformat("replicas x tp x pp x ep = %d x %d x %d x %d = %d ranks", shape.replicas,
                               shape.tp, shape.pp, shape.ep, ranks)
                   : strformat("replicas x tp x pp = %d x %d x %d = %d rank%s", shape.replicas, shape.tp,
                               shape.pp, ranks, ranks == 1 ? "" : "s");
  if (slurm.tasks_per_node > 0) {
    if (slurm.tasks_per_node * slurm.nodes != ranks)
      return error(StatusCode::kInvalidArgument,
                   "%s, but nodes x tasks_per_node = %d x %d = %d: the layout must fill the allocation exactly",
                   product.c_str(), slurm.nodes, slurm.tasks_per_node, slurm.nodes * slurm.tasks_per_node);
    layout.tasks_per_node = slurm.tasks_per_node;
  } else {
    if (ranks < slurm.nodes)
      return error(StatusCode::kInvalidArgument,
                   "%s on %d nodes would leave %d node%s allocated and idle: lower 'nodes' or add replicas",
                   product.c_str(), slurm.nodes, slurm.nodes - ranks, slurm.nodes - ranks == 1 ? "" : "s");
    if (ranks % slurm.nodes != 0)
      return error(StatusCode::kInvalidArgument,
                   "%s do not divide evenly over %d nodes (every node runs the same number of ranks)",
                   product.c_str(), slurm.nodes);
    layout.tasks_per_node = ranks / slurm.nodes;
  }
  const int per_replica = layout.ranks_per_replica();
  if (per_replica % layout.tasks_per_node != 0 && layout.tasks_per_node % per_replica != 0)
    return error(StatusCode::kInvalidArgument,
                 "%s give %d ranks per node, and a replica of %d ranks would straddle nodes "
                 "unevenly: each replica runs as a job step of its own, so it must fill whole nodes or "
                 "share a node with whole replicas",
                 product.c_str(), layout.tasks_per_node, per_replica);
  if (shape.cuda) {
    if (slurm.gpus_per_node < 1)
      return error(StatusCode::kInvalidArgument, "backend cuda needs 'gpus_per_node' (one GPU per rank)");
    if (slurm.gpus_per_node % shape.tp != 0)
      return error(StatusCode::kInvalidArgument,
                   "tp %d does not divide gpus_per_node %d: with backend cuda a TP group stays inside a node "
                   "(NVLink); use a tp that divides %d and put the rest in pp",
                   shape.tp, slurm.gpus_per_node, slurm.gpus_per_node);
    if (layout.tasks_per_node != slurm.gpus_per_node)
      return error(StatusCode::kInvalidArgument,
                   "%s gives %d ranks per node, but gpus_per_node is %d: backend cuda runs one rank per GPU, "
                   "and every allocated GPU is used",
                   product.c_str(), layout.tasks_per_node, slurm.gpus_per_node);
  }
  return layout;
}

}  // namespace ponder::slurm
