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

// The resolved deployment as YAML (what the job script carries). It never carries a key: an
// inline api_key must have gone through move_api_key_out first.
std::string emit_deploy_yaml(const DeployConfig& config);

// An inline `api_key` taken out of a deployment before its script is rendered: Slurm keeps the
// script and the job copies it into its directory with the umask's mode, so the copy names a new
// file in output_dir instead (api_key_file), which write_api_key_file makes (mode 0600) before
// sbatch runs. Empty `file` when there was no inline key.
struct MovedApiKey {
  std::string file;
  std::string key;
};
// With `dry_run` the file's name is a placeholder (nothing is written then).
Expected<MovedApiKey> move_api_key_out(DeployConfig& config, bool dry_run);
Status write_api_key_file(const MovedApiKey& moved);

}  // namespace ponder::apps
