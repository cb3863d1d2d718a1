// Choosing a backend by name: `--backend cpu|cuda` on the command line and `backend:` in the serve
// config. The CPU backend is always built; the CUDA backend only where CMake found a CUDA toolkit
// (backend_factory_cuda.cpp or backend_factory_no_cuda.cpp is compiled, never both), so asking
// for it elsewhere is a clear error rather than a missing symbol.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "collective/communicator.h"
#include "common/status.h"
#include "worker/backend/backend.h"
#include "worker/backend/cpu/cpu_backend.h"

namespace ponder::worker {

enum class BackendKind { kCpu, kCuda };

std::string_view backend_kind_name(BackendKind kind);  // "cpu", "cuda"
// kInvalidArgument naming the accepted values for anything else.
Expected<BackendKind> parse_backend_kind(std::string_view name);

struct BackendChoice {
  BackendKind kind = BackendKind::kCpu;
  CpuBackendOptions cpu;          // the CPU backend's threads, ISA and matmul precision
  int cuda_graph_max_batch = 64;  // decode batches up to this size replay CUDA graphs; 0: off
  // The CUDA device; -1: collective::choose_device from the process environment (SLURM_LOCALID
  // or the MPI local rank among the visible devices; device 0 when CUDA_VISIBLE_DEVICES names one).
  int cuda_device = -1;
};

// Whether this build has the CUDA backend compiled in.
bool cuda_backend_built();

// The backend `choice` names. kUnavailable for CUDA when this build lacks it or no device is
// visible, with the reason.
Expected<std::unique_ptr<Backend>> create_backend(const BackendChoice& choice);

// The communicator the model's TP/PP collectives use on `backend`'s tensors, given the host
// (MPI) communicator of the same group: for CUDA with NCCL built, an NcclCommunicator bootstrapped
// over `host` on the backend's stream (one GPU per rank); otherwise nullptr, meaning `host`
// itself (device tensors are staged through host memory). Defined in device_communicator_nccl.cpp
// or device_communicator_host.cpp, whichever this build compiles.
Expected<std::unique_ptr<collective::Communicator>> create_device_communicator(
    Backend& backend, collective::Communicator& host,
    collective::Deadline deadline);

}  // namespace ponder::worker
