// create_device_communicator where the CUDA backend and NCCL are built: an NcclCommunicator on
// the backend's stream for CUDA, the host communicator (nullptr) for the CPU backend.
#include "collective/nccl_communicator.h"
#include "worker/backend/backend_factory.h"

#include "common/check.h"
#include "worker/backend/cuda/cuda_backend.h"

namespace ponder::worker {

Expected<std::unique_ptr<collective::Communicator>> create_device_communicator(
    Backend& backend, collective::Communicator& host,
    collective::Deadline deadline) {
  auto* cuda = dynamic_cast<CudaBackend*>(&backend);
  if (cuda == nullptr) return std::unique_ptr<collective::Communicator>();
  PONDER_ASSIGN_OR_RETURN(
      auto nccl, collective::NcclCommunicator::create(
                     host, cuda->device_index(), deadline, static_cast<cudaStream_t>(cuda->stream())));
  return std::unique_ptr<collective::Communicator>(std::move(nccl));
}

}  // namespace ponder::worker
