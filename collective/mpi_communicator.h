// MpiCommunicator: Communicator over an MPI communicator (Open MPI). Every operation is
// non-blocking MPI polled until done or the deadline; errors are returned (MPI_ERRORS_RETURN),
// never fatal. Host buffers only. Not thread-safe (MPI_THREAD_FUNNELED: the engine thread).
#pragma once

#include <memory>

#include <mpi.h>

#include "collective/communicator.h"

namespace ponder::collective {

// MPI_Init_thread / MPI_Finalize for the process; created once by the command that needs MPI.
class MpiRuntime {
 public:
  static Expected<std::unique_ptr<MpiRuntime>> init(int* argc, char*** argv);
  ~MpiRuntime();
  int world_rank() const { return rank_; }
  int world_size() const { return size_; }

 private:
  MpiRuntime() = default;
  int rank_ = 0, size_ = 1;
};

class MpiCommunicator final : public Communicator {
 public:
  // A communicator over all ranks of the job.
  static Expected<std::unique_ptr<MpiCommunicator>> world();
  ~MpiCommunicator() override;

  // Ranks with the same `color` form a new group, ordered by `key` (MPI_Comm_split). Collective
  // over this communicator.
  Expected<std::unique_ptr<MpiCommunicator>> split(int color, int key, Deadline deadline);

  std::string_view backend() const override { return "mpi"; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  MPI_Comm comm() const { return comm_; }

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
  explicit MpiCommunicator(MPI_Comm comm);
  Status check_usable(const char* what) const;
  // Polls `request` until complete or `deadline`; a failure breaks the communicator.
  Status wait(MPI_Request* request, const char* what, Deadline deadline);

  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
  bool broken_ = false;
};

}  // namespace ponder::collective
