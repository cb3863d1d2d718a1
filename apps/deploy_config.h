// DeployConfig: a deploy.yaml — every `ponder serve` key plus a `slurm:` section — as `ponder
// slurm submit` reads it (paths made absolute, everything checked before anything is submitted)
// and as the job reads back its resolved copy inside the allocation.
#pragma once

#include <string>

#include "apps/serve_config.h"
#include "common/status.h"
#include "slurm/job_layout.h"
#include "slurm/slurm_options.h"

namespace ponder::apps {

struct DeployConfig {
  ServeConfig serve;  // host "" = the coordinator node's address; port 0 = any free port
  slurm::SlurmOptions slurm;
  slurm::JobLayout layout;
  std::string source;  // the file it came from
};

// Reads and checks a deployment. With `for_submit`, relative paths (model, output_dir) are taken
// from the current directory, the ponder binary defaults to this one, and (with `check_model`)
// the model's config must fit the layout; the job's own copy is already resolved.
Expected<DeployConfig> load_deploy_config(const std::string& path, bool for_submit, bool check_model = true);

// The resolved deployment as YAML (what the job script carries).
std::string emit_deploy_yaml(const DeployConfig& config);

}  // namespace ponder::apps
