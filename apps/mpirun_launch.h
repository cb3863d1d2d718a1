// Starting ponder's own ranks: `ponder generate --tp/--pp` and `ponder bench --tp/--pp` replace
// themselves with mpirun running a subcommand of this same binary on every rank; `ponder serve`
// starts one mpirun per replica as a child process.
#pragma once

#include <string>
#include <vector>

#include "common/check.h"
#include "common/status.h"

namespace ponder::apps {

// This binary's path (/proc/self/exe).
Expected<std::string> self_path();

// `mpirun … -np ranks <this binary> subcommand args…`, with what Open MPI needs on one machine:
// loopback-only transports (shared memory between ranks, TCP out-of-band on lo), oversubscription,
// no binding, and --allow-run-as-root when root. Sets those transports in this process's
// environment (OMPI_MCA_*, NCCL_SOCKET_IFNAME=lo, unless already set) so the child inherits them,
// and adds lib/libponder_loopback_bind.so to LD_PRELOAD: Open MPI 4.1's out-of-band listeners
// bind 0.0.0.0 and :: whatever oob_tcp_if_include says, and under that shim mpirun binds them to
// 127.0.0.1 and ::1 instead (its PMIx server listens on 127.0.0.1 by itself). Every listener of
// the job is then on loopback, whatever host the caller serves on: the ranks share this machine
// and reach the coordinator over loopback. kFailedPrecondition when the shim is missing.
Expected<std::vector<std::string>> mpirun_command(int ranks, const std::string& subcommand,
                                                  const std::vector<std::string>& args);

// Replaces this process with mpirun_command(ranks, subcommand, argv). (mpirun's --enable-recovery
// would let survivors of a dead rank report their own kTimeout/kRemote, but mpirun then exits 0
// whatever the ranks returned; for a one-shot job the exit code matters more.) Returns only on
// failure.
Status exec_mpirun(int ranks, const char* subcommand, int argc, char** argv);

}  // namespace ponder::apps
