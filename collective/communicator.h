// Communicator: the collectives a sharded model needs (all-reduce, all-gather, reduce-scatter,
// broadcast, send/recv, barrier, all-to-all) over one group of ranks. Every call has a deadline; a missed
// deadline is kTimeout and a failed or vanished peer is kRemote, never a hang. After either the
// communicator is broken: later calls fail with kFailedPrecondition. Not thread-safe: one thread
// (the engine thread of a rank) issues calls, in the same order on every rank.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/status.h"

namespace ponder::collective {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;

inline Deadline deadline_in(std::chrono::milliseconds ms) { return Clock::now() + ms; }

// Element types the reductions understand.
enum class ElementType { kF32, kBytes };

// Payload bytes handed to each kind of collective since creation (what the caller asked to move,
// not the wire bytes of the algorithm underneath).
struct CommStats {
  uint64_t all_reduce_bytes = 0;
  uint64_t all_gather_bytes = 0;  // bytes received: size() × per-rank bytes
  uint64_t reduce_scatter_bytes = 0;
  uint64_t broadcast_bytes = 0;
  uint64_t send_bytes = 0;
  uint64_t recv_bytes = 0;
  uint64_t all_to_all_bytes = 0;  // bytes sent to other ranks (this rank's own share excluded)
  uint64_t calls = 0;
  uint64_t total() const {
    return all_reduce_bytes + all_gather_bytes + reduce_scatter_bytes + broadcast_bytes +
           send_bytes + recv_bytes + all_to_all_bytes;
  }
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual std::string_view backend() const = 0;  // "mpi", "nccl", "local"
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // data[count] f32, summed element-wise over all ranks, in place.
  virtual Status all_reduce_sum(float* data, size_t count, Deadline deadline) = 0;
  // recv[size() × bytes] = concatenation of every rank's send[bytes], in rank order.
  virtual Status all_gather(const void* send, void* recv, size_t bytes, Deadline deadline) = 0;
  // send[size() × count] f32 summed over ranks; this rank receives block rank() into recv[count].
  virtual Status reduce_scatter_sum(const float* send, float* recv, size_t count,
                                    Deadline deadline) = 0;
  virtual Status broadcast(void* data, size_t bytes, int root, Deadline deadline) = 0;
  virtual Status send(const void* data, size_t bytes, int peer, int tag, Deadline deadline) = 0;
  virtual Status recv(void* data, size_t bytes, int peer, int tag, Deadline deadline) = 0;
  virtual Status barrier(Deadline deadline) = 0;
  // Personalised exchange: this rank sends send_bytes[q] bytes to each rank q — the blocks lie
  // one after another in `send`, in rank order — and receives recv_bytes[q] bytes from each q into
  // `recv`, likewise. send_bytes/recv_bytes have size() entries; what q sends to r must be what
  // r expects from q (exchange the counts first).
  virtual Status all_to_all(const void* send, const size_t* send_bytes, void* recv,
                            const size_t* recv_bytes, Deadline deadline) = 0;

  const CommStats& stats() const { return stats_; }
  void reset_stats() { stats_ = {}; }

 protected:
  CommStats stats_;
};

}  // namespace ponder::collective
