// Dispatcher: what the HTTP front needs of the replicas — token ids and sampling parameters in,
// token outputs streamed back. InProcessDispatcher runs one engine in this process; the ZeroMQ
// replica pool (replicas/replica_pool.h) routes to replicas in other processes.
#pragma once

#include <cstdint>
#include <functional>

#include "common/status.h"
#include "worker/engine/request.h"

namespace ponder::coordinator {

struct DispatcherStats {
  int64_t replicas = 0;          // registered
  int64_t healthy_replicas = 0;  // answered a heartbeat, with every rank, within the deadline
  int64_t requests_in_flight = 0;  // submitted and not finished
  int64_t waiting = 0;           // sequences queued in replicas
  int64_t running = 0;           // sequences in a running batch
  int64_t kv_blocks_used = 0;
  int64_t kv_blocks_free = 0;
  int64_t kv_tokens_per_replica = 0;  // the smallest replica's KV cache, in tokens (0: none)
  int64_t prefix_cache_queries = 0;  // full prompt blocks looked up
  int64_t prefix_cache_hits = 0;
  int64_t tokens_generated = 0;
  int64_t preemptions = 0;
  int64_t prefills = 0;                // worker::EngineStats::prefills, summed
  int64_t prompt_tokens_computed = 0;  // prompt tokens through the forward pass (cache hits not)
  int64_t spread_requests = 0;  // requests whose samples went to more than one replica
};

class Dispatcher {
 public:
  using OutputFn = std::function<void(const worker::EngineOutput&)>;
  virtual ~Dispatcher() = default;

  // Queues a request. Outputs of each of its n samples arrive in order on `on_output`, called
  // from a dispatcher thread (never from inside submit()), and each sample ends with exactly one
  // output whose `finished` is set. Errors: kInvalidArgument naming the field; kUnavailable when
  // every queue is full or no replica is alive (HTTP 503).
  virtual Expected<int64_t> submit(worker::EngineRequest request, OutputFn on_output) = 0;
  // Ends the request's unfinished samples with finish_reason "cancelled" and frees their KV
  // blocks in the replica. Unknown or finished ids are ignored.
  virtual void cancel(int64_t request_id) = 0;
  virtual DispatcherStats stats() const = 0;
};

}  // namespace ponder::coordinator
