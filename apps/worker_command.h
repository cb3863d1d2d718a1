// `ponder worker`: one MPI rank of a replica (run under mpirun or srun).
#pragma once

namespace ponder::apps {
// argv excludes "ponder worker".
int run_worker(int argc, char** argv);
}  // namespace ponder::apps
