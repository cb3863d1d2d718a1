// NcclCommunicator: Communicator over NCCL for device (GPU) buffers. The unique id is made by
// rank 0 of an MPI bootstrap group and broadcast over it; the communicator is created
// non-blocking and polled under the deadline; any failure or missed deadline aborts it
// (ncclCommAbort) and returns kRemote / kTimeout, as TensorRT-LLM does. Compiled only where the
// CUDA toolkit and NCCL are found. All pointers are device pointers on `device`. Not thread-safe.
#pragma once

#include <memory>

#include <cuda_runtime_api.h>
#include <nccl.h>

#include "collective/communicator.h"

namespace ponder::collective {

class NcclCommunicator final : public Communicator {
 public:
  // Collective over `bootstrap` (same ranks, same order).
  static Expected<std::unique_ptr<NcclCommunicator>> create(Communicator& bootstrap, int device,
                                                            Deadline deadline);
  ~NcclCommunicator() override;

  std::string_view backend() const override { return "nccl"; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  cudaStream_t stream() const { return stream_; }

  Status all_reduce_sum(float* data, size_t count, Deadline deadline) override;
  Status all_gather(const void* send, void* recv, size_t bytes, Deadline deadline) override;
  Status reduce_scatter_sum(const float* send, float* recv, size_t count,
                            Deadline deadline) override;
  Status broadcast(void* data, size_t bytes, int root, Deadline deadline) override;
  Status send(const void* data, size_t bytes, int peer, int tag, Deadline deadline) override;
  Status recv(void* data, size_t bytes, int peer, int tag, Deadline deadline) override;
  Status barrier(Deadline deadline) override;

 private:
  NcclCommunicator() = default;
  Status check_usable(const char* what) const;
  // Waits for an enqueued operation (`result` is what the NCCL call returned) to finish on the
  // stream, polling NCCL's asynchronous error; aborts the communicator on failure or timeout.
  Status finish(ncclResult_t result, const char* what, Deadline deadline);
  Status fail(StatusCode code, const char* what, const std::string& detail);

  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  float* scratch_ = nullptr;  // one float for barrier()
  int device_ = 0;
  int rank_ = 0, size_ = 1;
  bool broken_ = false;
};

}  // namespace ponder::collective
