// ReplicaPool: the coordinator's side of the replicas. Binds a ZeroMQ ROUTER; replica leaders
// (serve_replica) connect, register and heartbeat. Requests go to the replica the router picks
// (least outstanding work, prefix affinity); tokens stream back to the submitter. A replica that
// misses heartbeats, reports its ranks failed or disconnects (a send finds it gone) is dead: each
// unfinished sample of its requests is submitted again elsewhere as prompt + the tokens generated
// so far (the stream goes on), or, when no replica is left, waits up to hold_unplaced for one and
// then ends: with finish_reason "cancelled" (HTTP 503, worth a retry) when it had generated nothing
// yet, "error" otherwise. No request is left hanging.
//
// With CurveServerKeys in the options the ROUTER is a CURVE server and admits only replicas whose
// public key is listed (curve_authenticator.h): an unlisted peer never reaches this class.
//
// One thread owns the socket and every request's state; submit(), cancel() and stats() may be
// called from any thread, and output callbacks run on the pool's thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "coordinator/replicas/curve_keys.h"
#include "coordinator/replicas/dispatcher.h"

namespace ponder::coordinator {

struct ReplicaPoolOptions {
  std::string bind = "tcp://127.0.0.1:*";  // the ROUTER's endpoint ("*" port: any free one)
  std::string model;                       // served model name; other models are refused
  std::chrono::milliseconds heartbeat{250};           // what replicas are told to use
  std::chrono::milliseconds heartbeat_timeout{3'000};  // silent this long: dead
  int64_t max_queued = 1024;               // requests in flight beyond which submit() refuses
  std::vector<int32_t> think_start;        // a sample whose output opens with it is thinking
  std::vector<int32_t> think_end;          // to continue a moved sample after its thinking
  // A registration replaces the replica of the same replica_index (a restart): the old one is
  // lost (its samples move) and dropped from replicas(). Off: indices may repeat (tests).
  bool replace_same_index = false;
  // With no replica alive, unfinished samples wait this long for one to register (a supervised
  // restart) and go on there; 0: they end at once. They end early when every supervised replica
  // has failed (set_slots) and at a drain.
  std::chrono::milliseconds hold_unplaced{0};
  // CURVE on the ROUTER (curve_authenticator.h): only replicas whose public key is on
  // curve.allowed can connect. Empty: plain ZMTP, anyone who reaches the endpoint can register.
  CurveServerKeys curve;
};

struct ReplicaInfo {
  std::string id;    // the pool's name for it, e.g. "r1"
  std::string name;  // what the replica calls itself
  int64_t pid = 0;
  std::string host;       // its leader's host name
  int32_t replica_index = 0;  // index among the deployment's replicas (as it registered)
  int32_t tp = 1, pp = 1;
  bool healthy = false;
  bool lost = false;     // declared dead (missed heartbeats, failed ranks, disconnected)
  int64_t requests = 0;  // placed on it and not finished
};

class ReplicaPool final : public Dispatcher {
 public:
  static Expected<std::unique_ptr<ReplicaPool>> start(ReplicaPoolOptions options);
  ~ReplicaPool() override;

  // The bound endpoint with its real port, for replicas to connect to.
  const std::string& endpoint() const { return endpoint_; }
  // Waits until `count` replicas are registered and healthy; kTimeout naming how many came.
  Status wait_for_replicas(int count, std::chrono::milliseconds timeout) const;
  // Drains every replica (they finish what they run within `deadline`, then cancel the rest) and
  // waits for them to leave; requests still here after that end as "cancelled".
  void drain(std::chrono::milliseconds deadline);
  std::vector<ReplicaInfo> replicas() const;

  Expected<int64_t> submit(worker::EngineRequest request, OutputFn on_output) override;
  // The same, placed on the replica with id `replica_id` (ReplicaInfo::id) only: readiness probes
  // that must go through each replica. Fails the request when that replica is not alive.
  Expected<int64_t> submit_to(const std::string& replica_id, worker::EngineRequest request, OutputFn on_output);
  void cancel(int64_t request_id) override;
  DispatcherStats stats() const override;
  // What a supervisor (`ponder serve`) says of its replicas; stats() reports it.
  void set_slots(std::vector<ReplicaSlot> slots);
  // The supervisor saw the process of replica `replica_id` go: it is lost now (its samples move)
  // rather than at the heartbeat timeout.
  void lose(const std::string& replica_id, const std::string& why);

  struct State;  // the pool thread's world (replica_pool.cpp)

 private:
  ReplicaPool() = default;
  void run();
  void wake();

  ReplicaPoolOptions options_;
  std::string endpoint_;
  std::unique_ptr<State> state_;
  int wake_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> next_id_{1};
  std::atomic<int64_t> in_flight_{0};
  std::thread thread_;

  // Commands from other threads to the pool thread.
  struct Command {
    enum Kind { kSubmit, kCancel, kDrain, kLose } kind = kSubmit;
    int64_t id = 0;
    worker::EngineRequest request;
    OutputFn fn;
    std::string pin;  // kSubmit: the replica it must run on (empty: the router picks); kLose: which
    std::string why;  // kLose
    std::chrono::milliseconds deadline{0};
  };
  std::mutex commands_mu_;
  std::deque<Command> commands_;

  // What the pool thread publishes for stats() and replicas().
  mutable std::mutex snapshot_mu_;
  DispatcherStats stats_;
  std::vector<ReplicaInfo> replicas_;
  std::vector<ReplicaSlot> slots_;
};

}  // namespace ponder::coordinator
