// `ponder slurm …`: deployments on a Slurm cluster — submit (or --dry-run), status, endpoint,
// logs, cancel, list — and, inside the allocation, launch (the coordinator) and task (a rank).
#pragma once

namespace ponder::apps {

int run_slurm(int argc, char** argv);

}  // namespace ponder::apps
