// SlurmTarget: the deployment a sweep with `target: slurm: DEPLOY.yaml` runs against — submitted
// with `ponder slurm submit` (its files under the run's directory), waited for with `ponder slurm
// endpoint --wait` (READY: every replica answered), and cancelled with `ponder slurm cancel` (a
// drain) when the run ends, so the allocation is never held after the sweep.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace ponder::experiments {

class SlurmTarget {
 public:
  // Submits `deploy` with `ponder` (the binary) and waits up to `timeout` for its endpoint; the
  // job is cancelled when this fails.
  static Expected<std::unique_ptr<SlurmTarget>> start(const std::string& ponder, const std::string& deploy,
                                                      const std::string& output_dir, std::chrono::seconds timeout);
  ~SlurmTarget();  // cancel()
  SlurmTarget(const SlurmTarget&) = delete;
  SlurmTarget& operator=(const SlurmTarget&) = delete;

  const std::string& job_id() const { return job_id_; }
  const std::string& url() const { return url_; }
  const std::string& api_key_file() const { return api_key_file_; }
  const std::string& nodes() const { return nodes_; }  // Slurm's node list of the job
  // `ponder slurm cancel`: drain, then end the job. Idempotent.
  void cancel();

 private:
  SlurmTarget() = default;
  std::string ponder_, job_id_, url_, api_key_file_, nodes_;
  bool cancelled_ = false;
};

// `deploy` (a deploy.yaml) with a sweep point's deployment axes applied (tp, pp and replicas are
// its serve keys, nodes its slurm.nodes; a nodes value without a replicas axis scales the
// replicas with the nodes), written to DIR/deploy-<index>.yaml; returns that path.
Expected<std::string> deployment_variant(const std::string& deploy, const nlohmann::ordered_json& deployment,
                                         const std::string& dir, size_t index);

}  // namespace ponder::experiments
