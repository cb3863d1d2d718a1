// create_backend where the CUDA backend is built (PONDER_WITH_CUDA).
#include "worker/backend/backend_factory.h"

#include "common/check.h"

#include "collective/world_layout.h"
#include "common/process_env.h"
#include "worker/backend/cuda/cuda_backend.h"

namespace ponder::worker {

bool cuda_backend_built() { return true; }

Expected<std::unique_ptr<Backend>> create_backend(const BackendChoice& choice) {
  if (choice.kind == BackendKind::kCpu) {
    PONDER_ASSIGN_OR_RETURN(auto cpu, CpuBackend::create(choice.cpu));
    return std::unique_ptr<Backend>(std::move(cpu));
  }
  const int visible = cuda_device_count();
  if (visible == 0)
    return error(StatusCode::kUnavailable, "backend cuda: no usable CUDA device (%s)",
                 cuda_unavailable_reason().c_str());
  int device = choice.cuda_device;
  if (device < 0) {
    PONDER_ASSIGN_OR_RETURN(device, collective::choose_device(ProcessEnv::read(), visible));
  }
  if (device >= visible)
    return error(StatusCode::kInvalidArgument,
                 "backend cuda: device %d asked for, but this process sees %d (check "
                 "CUDA_VISIBLE_DEVICES and the ranks per node)",
                 device, visible);
  PONDER_ASSIGN_OR_RETURN(
      auto cuda,
      CudaBackend::create({.device = device, .graph_max_batch = choice.cuda_graph_max_batch}));
  return std::unique_ptr<Backend>(std::move(cuda));
}

}  // namespace ponder::worker
