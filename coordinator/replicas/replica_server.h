// The replica side of the ZeroMQ link: on a replica's leader rank, connects a DEALER to the
// coordinator's ROUTER, registers, and from then on runs the engine for it — Submit and Cancel in,
// Tokens out, a Heartbeat (load, and whether every rank answered) every heartbeat interval — until
// the coordinator says Drain. One thread does all of it, so the engine's outputs go out in step
// order.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "common/status.h"
#include "coordinator/replicas/curve_keys.h"
#include "worker/engine/engine.h"

namespace ponder::coordinator {

struct ReplicaServerOptions {
  std::string endpoint;  // the coordinator's ROUTER, e.g. tcp://127.0.0.1:5555
  std::string model;     // served model name, checked by the coordinator
  std::string name;      // for logs, e.g. "replica-1"
  std::string host;      // the leader's host name (logs, `ponder slurm status`)
  int32_t replica_index = 0;  // index among the deployment's replicas
  int32_t tp = 1;
  int32_t pp = 1;
  int32_t max_n = 64;
  int32_t max_running = 256;
  int64_t kv_blocks = 0;
  int64_t kv_bytes_per_token = 0;  // reported at registration (/metrics)
  std::chrono::milliseconds heartbeat{250};
  // No word from the coordinator for this long (it acknowledges every heartbeat): it is gone,
  // and the replica exits rather than serve nobody.
  std::chrono::milliseconds coordinator_timeout{10'000};
  // CURVE: the coordinator's public key and this replica's pair. Empty: plain ZMTP. A coordinator
  // that refuses the key, or a mechanism mismatch, ends serve_replica at once with an error
  // saying which.
  CurveClientKeys curve;
};

// Runs until the coordinator drains the replica (Ok), the coordinator goes silent (kTimeout), the
// link's handshake is refused (kFailedPrecondition), or the engine fails (its error, after telling the coordinator so that it moves the requests).
// `ping` checks that every rank of the replica is alive (null: a single rank); it runs with each
// heartbeat while the engine is idle — a step already proves it otherwise.
Status serve_replica(worker::Engine& engine, const ReplicaServerOptions& options,
                     std::function<Status()> ping = nullptr);

}  // namespace ponder::coordinator
