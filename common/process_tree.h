// A process and everything it started. Open MPI's mpirun puts each rank in a process group of its
// own, so signalling mpirun's group does not reach the ranks: whoever must stop a replica at once
// (SIGKILL, which mpirun cannot forward) signals the whole tree. Linux (/proc).
#pragma once

#include <sys/types.h>

#include <vector>

namespace ponder {

// Every process below `root` (children, their children, ...), from /proc; empty when none.
std::vector<pid_t> descendants(pid_t root);

// Sends `sig` to `root` and all its descendants, the descendants found before the root is
// signalled (so none is missed by being re-parented).
void signal_tree(pid_t root, int sig);

}  // namespace ponder
