// LocalCommunicator: the group of one rank, so single-process runs take the same code path as
// sharded ones. Collectives are copies or no-ops; send/recv to self is a usage error.
#pragma once

#include "collective/communicator.h"

namespace ponder::collective {

class LocalCommunicator final : public Communicator {
 public:
  std::string_view backend() const override { return "local"; }
  int rank() const override { return 0; }
  int size() const override { return 1; }
  Status all_reduce_sum(float*, size_t, Deadline) override { return {}; }
  Status all_gather(const void* send, void* recv, size_t bytes, Deadline) override;
  Status reduce_scatter_sum(const float* send, float* recv, size_t count, Deadline) override;
  Status broadcast(void*, size_t, int root, Deadline) override;
  Status send(const void*, size_t, int peer, int, Deadline) override;
  Status recv(void*, size_t, int peer, int, Deadline) override;
  Status barrier(Deadline) override { return {}; }
  Status all_to_all(const void* send, const size_t* send_bytes, void* recv,
                    const size_t* recv_bytes, Deadline) override;
};

}  // namespace ponder::collective
