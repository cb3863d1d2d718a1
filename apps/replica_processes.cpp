#include "apps/replica_processes.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <thread>

#include "common/log.h"
#include "common/process_tree.h"
#include "common/strings.h"

namespace ponder::apps {

using Clock = std::chrono::steady_clock;

std::string Child::describe_exit() const {
  return WIFEXITED(status) ? strformat("status %d", WEXITSTATUS(status)) : strformat("signal %d", WTERMSIG(status));
}

Expected<Child> spawn(const std::string& what, const std::vector<std::string>& words, const sigset_t& original_mask,
                      const std::string& log_path) {
  std::vector<char*> argv;
  std::vector<std::string> copy = words;
  for (auto& w : copy) argv.push_back(w.data());
  argv.push_back(nullptr);
  int log_fd = -1;
  if (!log_path.empty()) {
    log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) return error(StatusCode::kUnavailable, "cannot open %s: %s", log_path.c_str(), std::strerror(errno));
  }
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    if (log_fd >= 0) close(log_fd);
    return error(StatusCode::kUnavailable, "fork failed: %s", std::strerror(errno));
  }
  if (pid == 0) {
    setpgid(0, 0);
    // If the coordinator dies without draining, the launcher hears it and takes its ranks down.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);
    if (log_fd >= 0) {
      dup2(log_fd, STDOUT_FILENO);
      dup2(log_fd, STDERR_FILENO);
    }
    sigprocmask(SIG_SETMASK, &original_mask, nullptr);
    execvp(argv[0], argv.data());
    std::fprintf(stderr, "ponder: cannot start %s: %s\n", argv[0], std::strerror(errno));
    _exit(127);
  }
  if (log_fd >= 0) close(log_fd);
  setpgid(pid, pid);
  return Child{.what = what, .pid = pid};
}

void reap(std::vector<Child>& children) {
  for (Child& c : children) {
    if (c.exited) continue;
    int status = 0;
    if (waitpid(c.pid, &status, WNOHANG) == c.pid) {
      c.exited = true;
      c.status = status;
      PONDER_LOG(kWarn, "serve", "%s (pid %d) exited: %s", c.what.c_str(), c.pid, c.describe_exit().c_str());
    }
  }
}

void stop_children(std::vector<Child>& children, std::chrono::milliseconds grace) {
  const auto until = Clock::now() + grace;
  auto all_exited = [&] {
    reap(children);
    for (const Child& c : children)
      if (!c.exited) return false;
    return true;
  };
  while (!all_exited() && Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  for (const Child& c : children)
    if (!c.exited) kill(-c.pid, SIGTERM);
  const auto hard = Clock::now() + std::chrono::seconds(5);
  while (!all_exited() && Clock::now() < hard) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  for (Child& c : children)
    if (!c.exited) {
      signal_tree(c.pid, SIGKILL);
      waitpid(c.pid, &c.status, 0);
      c.exited = true;
    }
}

std::vector<std::string> replica_args(const ServeConfig& c, const std::string& endpoint, int threads) {
  std::vector<std::string> a = {"--coordinator", endpoint, "--model", c.model,
                                "--served-model-name", c.served_model_name,
                                "--tp", std::to_string(c.tp), "--pp", std::to_string(c.pp),
                                "--ep", std::to_string(c.ep),
                                "--backend", c.backend, "--threads", std::to_string(threads),
                                "--precision", c.dtype == "float32" ? "exact" : "bf16",
                                "--kv-cache-bytes", std::to_string(c.kv_cache_bytes),
                                "--kv-cache-dtype", c.kv_cache_dtype,
                                "--quantize", c.quantize,
                                "--token-budget", std::to_string(c.token_budget),
                                "--max-running", std::to_string(c.max_running),
                                "--max-n", std::to_string(c.max_n),
                                "--heartbeat-ms", std::to_string(c.heartbeat_ms),
                                "--timeout-ms", std::to_string(c.collective_timeout_ms)};
  if (!c.stage_layers.empty()) {
    std::vector<std::string> layers;
    for (int64_t n : c.stage_layers) layers.push_back(std::to_string(n));
    a.insert(a.end(), {"--stage-layers", join(layers, ",")});
  }
  return a;
}

int pending_signal(const sigset_t& signals) {
  sigset_t pending;
  if (sigpending(&pending) != 0) return 0;
  for (int s = 1; s < NSIG; ++s)
    if (sigismember(&signals, s) == 1 && sigismember(&pending, s) == 1) return s;
  return 0;
}

Status wait_for_registration(const coordinator::ReplicaPool& pool, int count, std::vector<Child>& children,
                             std::chrono::seconds timeout, const sigset_t& stop_signals,
                             const std::function<std::string()>& missing) {
  const auto until = Clock::now() + timeout;
  while (!pool.wait_for_replicas(count, std::chrono::milliseconds(100)).ok()) {
    if (int s = pending_signal(stop_signals))
      return error(StatusCode::kCancelled, "%s during start-up, before every replica registered", strsignal(s));
    reap(children);
    for (const Child& c : children)
      if (c.exited)
        return error(StatusCode::kUnavailable, "%s exited (%s) before every replica registered (its errors are above)",
                     c.what.c_str(), c.describe_exit().c_str());
    if (Clock::now() >= until) {
      Status st = pool.wait_for_replicas(count, std::chrono::milliseconds(0));
      if (st.ok()) break;
      return missing ? st.with_context(missing()) : st;
    }
  }
  return {};
}

ReplicaSupervisor::ReplicaSupervisor(coordinator::ReplicaPool& pool, std::vector<Child> children,
                                     std::vector<std::vector<std::string>> argv, const sigset_t& original_mask,
                                     SupervisorOptions options)
    : pool_(pool), original_mask_(original_mask), options_(options) {
  const std::vector<coordinator::ReplicaInfo> infos = pool_.replicas();
  for (size_t r = 0; r < children.size(); ++r) {
    Slot slot{.child = children[r], .argv = std::move(argv[r]), .backoff = options_.backoff, .since = Clock::now()};
    for (const auto& info : infos)
      if (info.replica_index == static_cast<int32_t>(r) && !info.lost) slot.id = info.id;
    slots_.push_back(std::move(slot));
  }
  publish();
}

std::vector<Child> ReplicaSupervisor::children() const {
  std::vector<Child> out;
  for (const Slot& slot : slots_)
    if (slot.child.pid > 0 && !slot.child.exited) out.push_back(slot.child);
  return out;
}

void ReplicaSupervisor::tick() {
  const auto now = Clock::now();
  const std::vector<coordinator::ReplicaInfo> infos = pool_.replicas();
  for (size_t r = 0; r < slots_.size(); ++r) {
    Slot& slot = slots_[r];
    const int32_t index = static_cast<int32_t>(r);
    if (slot.state == State::kFailed) continue;
    if (slot.state == State::kRestarting) {
      if (now >= slot.since) start(index, slot);
      continue;
    }
    // Starting or healthy: watch the process and the pool's view of it.
    std::vector<pid_t> tree = descendants(slot.child.pid);
    if (!tree.empty()) slot.tree = std::move(tree);
    int status = 0;
    if (waitpid(slot.child.pid, &status, WNOHANG) == slot.child.pid) {
      slot.child.exited = true;
      slot.child.status = status;
      down(index, slot, "its mpirun exited (" + slot.child.describe_exit() + ")");
      continue;
    }
    const coordinator::ReplicaInfo* info = nullptr;
    for (const auto& i : infos)
      if (i.replica_index == index && i.id != slot.stale_id) info = &i;
    if (info) {
      slot.id = info->id;
      if (info->lost) {
        down(index, slot, info->id + " was declared lost by the pool");
        continue;
      }
      if (info->healthy && slot.state == State::kStarting) {
        PONDER_LOG(kInfo, "serve", "replica %d is back as %s after %lld restart%s", index, info->id.c_str(),
                   (long long)slot.restarts, slot.restarts == 1 ? "" : "s");
        slot.state = State::kHealthy;
        slot.since = now;
      }
    }
    if (slot.state == State::kStarting && now - slot.since > options_.startup_timeout) {
      down(index, slot, strformat("it did not register within %lld ms", (long long)options_.startup_timeout.count()));
      continue;
    }
    // Healthy for as long as the longest backoff: a later loss starts the backoff over.
    if (slot.state == State::kHealthy && now - slot.since > options_.max_backoff) slot.backoff = options_.backoff;
  }
  publish();
}

void ReplicaSupervisor::down(int32_t index, Slot& slot, const std::string& why) {
  // What is left of it: the mpirun's tree if it still runs, and the ranks it had (Open MPI puts
  // each in a group of its own, and a killed mpirun leaves them behind).
  if (!slot.child.exited) {
    std::vector<pid_t> tree = descendants(slot.child.pid);
    if (!tree.empty()) slot.tree = std::move(tree);
    signal_tree(slot.child.pid, SIGKILL);
    waitpid(slot.child.pid, &slot.child.status, 0);
    slot.child.exited = true;
  }
  kill(-slot.child.pid, SIGKILL);
  for (pid_t p : slot.tree) kill(p, SIGKILL);
  slot.tree.clear();
  if (!slot.id.empty()) pool_.lose(slot.id, "replica " + std::to_string(index) + " is down: " + why);
  slot.stale_id = slot.id;
  slot.id.clear();
  if (slot.restarts >= options_.max_restarts) {
    PONDER_LOG(kError, "serve", "replica %d is down (%s) and stays down: restarted %lld time%s, the limit "
               "(max_replica_restarts)", index, why.c_str(), (long long)slot.restarts, slot.restarts == 1 ? "" : "s");
    slot.state = State::kFailed;
    return;
  }
  PONDER_LOG(kWarn, "serve", "replica %d is down (%s): restarting it in %lld ms (restart %lld of at most %lld)", index,
             why.c_str(), (long long)slot.backoff.count(), (long long)slot.restarts + 1,
             (long long)options_.max_restarts);
  slot.state = State::kRestarting;
  slot.since = Clock::now() + slot.backoff;  // when to start it
  slot.backoff = std::min(slot.backoff * 2, options_.max_backoff);
}

void ReplicaSupervisor::start(int32_t index, Slot& slot) {
  ++slot.restarts;
  Expected<Child> child = spawn(slot.child.what, slot.argv, original_mask_);
  if (!child) {
    slot.child.exited = true;
    down(index, slot, "it could not be started: " + child.error().message());
    return;
  }
  slot.child = *child;
  slot.state = State::kStarting;
  slot.since = Clock::now();
}

void ReplicaSupervisor::publish() {
  std::vector<coordinator::ReplicaSlot> out;
  for (size_t r = 0; r < slots_.size(); ++r) {
    const Slot& slot = slots_[r];
    // Started again and not registered yet is still restarting, as far as clients can tell.
    const char* state = slot.state == State::kHealthy  ? "healthy"
                        : slot.state == State::kFailed ? "failed"
                                                       : "restarting";
    out.push_back({.index = static_cast<int32_t>(r), .state = state, .restarts = slot.restarts, .id = slot.id});
  }
  pool_.set_slots(std::move(out));
}

}  // namespace ponder::apps
