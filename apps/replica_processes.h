// The replica processes a coordinator starts and watches: `ponder serve` runs one mpirun per
// replica, `ponder slurm launch` one srun step for all of them. Each is a child in a process group
// of its own; reap() notes which exited, stop_children() ends the rest (SIGTERM to the group, then
// SIGKILL to the whole tree: mpirun cannot forward SIGKILL and its ranks sit in groups of their
// own).
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "apps/serve_config.h"
#include "common/status.h"
#include "coordinator/replicas/replica_pool.h"

namespace ponder::apps {

struct Child {
  std::string what;  // for logs: "replica 2 (mpirun)", "ranks (srun)"
  pid_t pid = -1;
  bool exited = false;
  int status = 0;
  std::string describe_exit() const;  // "status 1" / "signal 9"
};

// Starts argv as a child in a group of its own that gets SIGTERM when this process dies, with
// `original_mask` as its signal mask; with `log_path`, its stdout and stderr are appended there.
Expected<Child> spawn(const std::string& what, const std::vector<std::string>& argv, const sigset_t& original_mask,
                      const std::string& log_path = "");
void reap(std::vector<Child>& children);
void stop_children(std::vector<Child>& children, std::chrono::milliseconds grace);

// The `ponder replica` options of a deployment's ranks.
std::vector<std::string> replica_args(const ServeConfig& c, const std::string& endpoint, int threads);

// Waits until `count` replicas have registered with `pool`, or fails: a child exited first
// (naming it), one of the blocked `stop_signals` is pending (kCancelled: stopped during
// start-up), or `timeout` passed (the pool's error; `missing` may add which ranks did not come).
Status wait_for_registration(const coordinator::ReplicaPool& pool, int count, std::vector<Child>& children,
                             std::chrono::seconds timeout, const sigset_t& stop_signals,
                             const std::function<std::string()>& missing = nullptr);

// The first of `signals` that is pending (blocked and not yet taken), or 0; it stays pending.
int pending_signal(const sigset_t& signals);

// Keeps the replicas of `ponder serve` running. A replica whose mpirun exits, or that the pool
// declares lost, has what is left of its process tree killed and is started again with the same
// command after a backoff (doubling up to max_backoff), at most max_restarts times; then it stays
// down ("failed", logged as an error). A restart that does not register within startup_timeout
// counts as another loss. The restarted replica registers like a new one (the pool replaces the
// old registration of its replica_index). Not thread-safe: the serve loop owns it and calls tick().
struct SupervisorOptions {
  int64_t max_restarts = 5;
  std::chrono::milliseconds backoff{1000};
  std::chrono::milliseconds max_backoff{30'000};
  std::chrono::milliseconds startup_timeout{300'000};
};

class ReplicaSupervisor {
 public:
  // Takes over `children` (started and registered), child r being replica r started by argv[r].
  ReplicaSupervisor(coordinator::ReplicaPool& pool, std::vector<Child> children,
                    std::vector<std::vector<std::string>> argv, const sigset_t& original_mask,
                    SupervisorOptions options);
  // Reaps, notices losses, kills and restarts; publishes each replica's state to the pool.
  void tick();
  // The replicas' current children, for stop_children().
  std::vector<Child> children() const;

 private:
  enum class State { kStarting, kHealthy, kRestarting, kFailed };
  struct Slot {
    Child child;
    std::vector<std::string> argv;
    State state = State::kHealthy;
    int64_t restarts = 0;
    std::chrono::milliseconds backoff{0};
    std::chrono::steady_clock::time_point since;  // of the state
    std::string id;        // the pool's id of this start's registration
    std::string stale_id;  // the previous start's, until the pool replaces it
    std::vector<pid_t> tree;  // the child's descendants when last looked
  };
  void down(int32_t index, Slot& slot, const std::string& why);
  void start(int32_t index, Slot& slot);
  void publish();

  coordinator::ReplicaPool& pool_;
  sigset_t original_mask_;
  SupervisorOptions options_;
  std::vector<Slot> slots_;
};

}  // namespace ponder::apps
