// Dispatcher: what the HTTP front needs of the replicas — token ids and sampling parameters in,
// token outputs streamed back. InProcessDispatcher runs one engine in this process; the ZeroMQ
// replica pool (replicas/replica_pool.h) routes to replicas in other processes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "worker/engine/request.h"

namespace ponder::coordinator {

// One replica of a supervised deployment (`ponder serve --replicas N`) as its supervisor sees it.
struct ReplicaSlot {
  int32_t index = 0;      // among the deployment's replicas
  std::string state;      // "healthy", "restarting" (until it registers again) or "failed" (down)
  int64_t restarts = 0;   // so far
  std::string id;         // the pool's id of its current registration; empty before one
};

struct DispatcherStats {
  int64_t replicas = 0;          // registered
  int64_t healthy_replicas = 0;  // answered a heartbeat, with every rank, within the deadline
  int64_t requests_in_flight = 0;  // submitted and not finished
  int64_t waiting = 0;           // sequences queued in replicas
  int64_t running = 0;           // sequences in a running batch
  int64_t kv_blocks_used = 0;
  int64_t kv_blocks_free = 0;
  int64_t kv_tokens_per_replica = 0;  // the smallest replica's KV cache, in tokens (0: none)
  int64_t kv_bytes_per_token = 0;  // one token's KV cache bytes, all layers (MLA: its latent); the largest replica's
  int64_t prefix_cache_queries = 0;  // full prompt blocks looked up
  int64_t prefix_cache_hits = 0;
  int64_t tokens_generated = 0;
  int64_t preemptions = 0;
  int64_t prefills = 0;                // worker::EngineStats::prefills, summed
  int64_t prompt_tokens_computed = 0;  // prompt tokens through the forward pass (cache hits not)
  int64_t spread_requests = 0;  // requests whose samples went to more than one replica
  int64_t replica_link_refusals = 0;  // handshakes the replica socket refused (CURVE: unlisted keys…)
  std::vector<ReplicaSlot> replica_slots;  // supervised replicas; empty when nobody supervises
  int64_t replica_restarts = 0;  // summed over replica_slots
  int64_t replicas_down = 0;     // replica_slots not healthy (restarting or failed)
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
