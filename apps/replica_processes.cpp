#include "apps/replica_processes.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
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
                                "--backend", c.backend, "--threads", std::to_string(threads),
                                "--precision", c.dtype == "float32" ? "exact" : "bf16",
                                "--kv-cache-bytes", std::to_string(c.kv_cache_bytes),
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

}  // namespace ponder::apps
