// Inside a Slurm allocation: `ponder slurm launch DEPLOY` (the batch script execs it on the first
// node) is the coordinator — it starts every rank with one srun step, waits until each replica
// has registered and answered a real generation, serves the API, and publishes endpoint.json in
// the job's directory; `ponder slurm task FILE` is each rank of that step.
#pragma once

#include <string>

namespace ponder::apps {

int run_slurm_launch(const std::string& deploy_path);
int run_slurm_task(const std::string& task_file);

}  // namespace ponder::apps
