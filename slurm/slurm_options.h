// SlurmOptions: the `slurm:` section of a deploy.yaml — what to ask Slurm for (nodes, GPUs, CPUs,
// partition, account, qos, time, …), site switches (how GPUs are requested, --exclusive,
// --segment, containers) and where the job keeps its files. Parsed from YAML with errors that name
// the key; written back as YAML for the job's own copy of its deployment.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "common/status.h"

namespace ponder::slurm {

// How the script asks for GPUs: sites differ (`--gpus-per-node=N` needs Slurm >= 19.05 with
// gres/gpu configured; older or stricter sites take `--gres=gpu:N`).
enum class GpuRequest { kGpusPerNode, kGres };

struct SlurmOptions {
  int nodes = 1;
  int tasks_per_node = 0;  // 0: replicas × tp × pp / nodes (must divide evenly)
  int gpus_per_node = 0;
  GpuRequest gpu_request = GpuRequest::kGpusPerNode;
  std::string gpu_type;    // optional GRES type, e.g. "h100" → --gres=gpu:h100:8
  int cpus_per_task = 1;
  std::string mem;         // --mem (e.g. "0" for all of it, "64G"); empty: the site default
  std::string partition, account, qos, time, constraint;
  std::string job_name = "ponder";
  std::string output_dir = "ponder-jobs";  // made absolute at submit; the job's files go in <dir>/<job id>/
  bool exclusive = false;
  bool requeue = false;
  int64_t signal_grace_s = 120;  // --signal=B:USR1@grace; 0: no signal
  int segment = 0;               // --segment=N (Slurm 24.11+ topology segments); 0: not set
  std::string container_image;   // pyxis/enroot; the container flags are passed only when set
  std::vector<std::string> container_mounts;
  std::string container_workdir;
  std::string interface;         // network interface of ponder's listeners (e.g. ib0); empty:
                                 // the address the node's host name resolves to
  std::string ponder;            // the ponder binary the job runs; empty: the submitting one
  std::map<std::string, std::string> env;      // exported in the job (NCCL_SOCKET_IFNAME, …)
  std::vector<std::string> extra_sbatch_args;  // passed verbatim, one #SBATCH line each
  std::vector<std::string> extra_srun_args;    // passed verbatim to the ranks' srun
};

// The keys, for --help and docs/slurm.md.
extern const char* const kSlurmOptionKeys;

// Reads the `slurm:` mapping; `where` prefixes errors (e.g. "deploy.yaml: slurm: ").
Status parse_slurm_options(const YAML::Node& node, const std::string& where, SlurmOptions& out);
// The same mapping back (every key, defaults included), for the job's resolved deploy.yaml.
void emit_slurm_options(const SlurmOptions& options, YAML::Emitter& out);

}  // namespace ponder::slurm
