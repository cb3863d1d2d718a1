// Starting ponder's own ranks: `ponder generate --tp/--pp` and `ponder bench --tp/--pp` replace
// themselves with mpirun running a subcommand of this same binary on every rank.
#pragma once

#include "common/status.h"

namespace ponder::apps {

// Replaces this process with `mpirun -np ranks <this binary> subcommand argv...`, with what Open
// MPI needs on one machine: loopback-only transports (shared memory between ranks, TCP
// out-of-band on lo), oversubscription, no binding, and --allow-run-as-root when root. (mpirun's
// --enable-recovery would let survivors of a dead rank report their own kTimeout/kRemote, but
// mpirun then exits 0 whatever the ranks returned; for a one-shot job the exit code matters more.)
// Returns only on failure.
Status exec_mpirun(int ranks, const char* subcommand, int argc, char** argv);

}  // namespace ponder::apps
