// NcclCommunicator: Communicator over NCCL for device (GPU) buffers. The unique id is made by
// rank 0 of a bootstrap group (MPI, or any Communicator) and broadcast over it; the communicator
// is created non-blocking and polled under the deadline; every operation is polled until NCCL
// has enqueued it and the stream has run it; any failure or missed deadline aborts the
// communicator (ncclCommAbort) and returns kRemote / kTimeout, as TensorRT-LLM does. Compiled
// only where the CUDA backend and NCCL are found. All pointers are device pointers on `device`.
// Not thread-safe.
#pragma once

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <memory>

#include "collective/communicator.h"

namespace ponder::collective {

class NcclCommunicator final : public Communicator {
 public:
  // Collective over `bootstrap` (same ranks, same order). Operations run on `stream` when given
  // (e.g. the CUDA backend's, so they follow its kernels without a host sync), else on a stream
  // of the communicator's own.
  static Expected<std::unique_ptr<NcclCommunicator>> create(Communicator& bootstrap, int device,
                                                            Deadline deadline,
                                                            cudaStream_t stream = nullptr);
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
  Status all_to_all(const void* send, const size_t* send_bytes, void* recv,
                    const size_t* recv_bytes, Deadline deadline) override;

 private:
  NcclCommunicator() = default;
  Status check_usable(const char* what) const;
  // Waits for an enqueued operation (`result` is what the NCCL call returned) to finish on the
  // stream, polling NCCL's asynchronous error; aborts the communicator on failure or timeout.
  Status finish(ncclResult_t result, const char* what, Deadline deadline);
  Status fail(StatusCode code, const char* what, const std::string& detail);

  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  bool owns_stream_ = false;
  float* scratch_ = nullptr;  // one float for barrier()
  int device_ = 0;
  int rank_ = 0, size_ = 1;
  bool broken_ = false;
};

}  // namespace ponder::collective
