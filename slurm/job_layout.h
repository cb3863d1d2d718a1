// JobLayout: how a deployment's replicas × tp × pp ranks fill a Slurm allocation. Ranks are
// placed in blocks: rank r runs on node r / tasks_per_node, so a TP group, whose ranks are
// neighbours (collective/world_layout.h), stays inside a node whenever tp divides
// tasks_per_node, and pipeline stages go across nodes. Each replica is one srun step of its own
// (a failing rank aborts its replica's MPI world, not the others), so a replica either fills
// whole nodes or shares one node with whole other replicas. Pure arithmetic, unit-tested.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "common/status.h"
#include "slurm/slurm_options.h"

namespace ponder::slurm {

struct JobShape {
  int replicas = 1;
  int tp = 1;
  int pp = 1;
  int ep = 1;  // expert-parallel columns of tp ranks per stage
  bool cuda = false;  // one GPU per rank
};

struct JobLayout {
  JobShape shape;
  int nodes = 1;
  int tasks_per_node = 1;
  int ranks() const { return nodes * tasks_per_node; }
  int node_of(int rank) const { return rank / tasks_per_node; }
  int ranks_per_replica() const { return shape.tp * shape.pp * shape.ep; }
  // Indices of the nodes that replica `r`'s ranks run on, in order.
  std::vector<int> nodes_of_replica(int replica) const;
  // Replica r's srun step: its first node (srun --relative), its node count and ranks per node.
  int first_rank(int replica) const { return replica * ranks_per_replica(); }
  int first_node(int replica) const { return node_of(first_rank(replica)); }
  int nodes_per_replica() const { return ranks_per_replica() > tasks_per_node ? ranks_per_replica() / tasks_per_node : 1; }
  int replica_tasks_per_node() const { return std::min(ranks_per_replica(), tasks_per_node); }
  // One line per replica stage: "replica 0 stage 1: ranks 8-15 (tp 0-7) on n2"; `node_names`
  // (the allocation's, in order) may be empty: then "node 1", "node 2", ….
  std::string describe(const std::vector<std::string>& node_names) const;
};

// The layout, or an error that names the problem: ranks that do not fill the nodes exactly (no
// node may sit allocated and idle), a tasks_per_node that disagrees, backend cuda without one GPU
// per rank or with a TP group across nodes, a replica that would share a node unevenly.
Expected<JobLayout> plan_job_layout(const SlurmOptions& slurm, const JobShape& shape);

}  // namespace ponder::slurm
