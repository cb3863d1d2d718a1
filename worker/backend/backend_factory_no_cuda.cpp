// create_backend where this build has no CUDA backend (no toolkit, or PONDER_ENABLE_CUDA=OFF).
#include "worker/backend/backend_factory.h"

#include "common/check.h"

namespace ponder::worker {

bool cuda_backend_built() { return false; }

Expected<std::unique_ptr<Backend>> create_backend(const BackendChoice& choice) {
  if (choice.kind == BackendKind::kCuda)
    return error(StatusCode::kUnavailable,
                 "backend cuda: this ponder was built without the CUDA backend (CMake found no "
                 "CUDA toolkit with cuBLASLt, or PONDER_ENABLE_CUDA was OFF); rebuild with "
                 "`cmake --preset cuda`");
  PONDER_ASSIGN_OR_RETURN(auto cpu, CpuBackend::create(choice.cpu));
  return std::unique_ptr<Backend>(std::move(cpu));
}

}  // namespace ponder::worker
