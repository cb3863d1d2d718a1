// What the replica tests share: real `ponder replica` processes under mpirun (each in a process
// group of its own, stopped by pid), a collector of a dispatcher's outputs, and a mixed set of
// requests with their comparison against the in-process engine.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "coordinator/replicas/dispatcher.h"

namespace ponder::coordinator::replica_test {

inline const std::string kModel = std::string(PONDER_TEST_DATA_DIR) + "/models/qwen3_f32";
inline const std::string kPonder = std::string(PONDER_BINARY_DIR) + "/bin/ponder";
// A model with a 151k vocabulary (scripts/make_default_model.sh): slow enough per token that a
// replica can be killed while its requests are half done.
inline const std::string kSlowModel = std::string(PONDER_SOURCE_DIR) + "/models/random-default";

// Everything a request produced, per sample.
struct Result {
  std::map<int32_t, std::vector<int32_t>> tokens;
  std::map<int32_t, std::string> finish;
  std::map<int32_t, worker::Usage> usage;
  std::map<int32_t, std::string> error;
  int finished = 0;
};

class Collector {
 public:
  Dispatcher::OutputFn fn(int64_t key) {
    return [this, key](const worker::EngineOutput& o) {
      std::lock_guard<std::mutex> lock(mu_);
      Result& r = results_[key];
      auto& t = r.tokens[o.index];
      t.insert(t.end(), o.tokens.begin(), o.tokens.end());
      if (o.finished) {
        r.finish[o.index] = o.finish_reason;
        r.usage[o.index] = o.usage;
        r.error[o.index] = o.error;
        ++r.finished;
        cv_.notify_all();
      }
    };
  }
  // Waits until `samples` samples of `keys` finished; false on timeout.
  bool wait(int total_samples, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] {
      int n = 0;
      for (auto& [k, r] : results_) n += r.finished;
      return n >= total_samples;
    });
  }
  int64_t tokens_so_far() {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t n = 0;
    for (auto& [k, r] : results_)
      for (auto& [i, t] : r.tokens) n += static_cast<int64_t>(t.size());
    return n;
  }
  Result get(int64_t key) {
    std::lock_guard<std::mutex> lock(mu_);
    return results_[key];
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int64_t, Result> results_;
};

// One replica: an mpirun of `ranks` ponder replica processes, in its own process group.
inline pid_t start_replica(const std::string& endpoint, int tp, int pp, const std::string& model,
                           const std::vector<std::string>& extra = {},
                           const std::string& log_path = "") {
  std::vector<std::string> words = {"mpirun",
                                    "--oversubscribe",
                                    "--bind-to",
                                    "none",
                                    "-np",
                                    std::to_string(tp * pp),
                                    kPonder,
                                    "replica",
                                    "--coordinator",
                                    endpoint,
                                    "--model",
                                    model,
                                    "--served-model-name",
                                    "test-model",
                                    "--tp",
                                    std::to_string(tp),
                                    "--pp",
                                    std::to_string(pp),
                                    "--threads",
                                    "1",
                                    "--kv-cache-bytes",
                                    "67108864",
                                    "--heartbeat-ms",
                                    "50"};
  words.insert(words.end(), extra.begin(), extra.end());
  if (geteuid() == 0) words.insert(words.begin() + 1, "--allow-run-as-root");
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    if (!log_path.empty()) {
      const int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
      }
    }
    setenv("OMPI_MCA_btl", "self,vader", 1);
    setenv("OMPI_MCA_btl_vader_single_copy_mechanism", "none", 1);
    setenv("OMPI_MCA_oob_tcp_if_include", "lo", 1);
    std::vector<char*> argv;
    for (auto& w : words) argv.push_back(w.data());
    argv.push_back(nullptr);
    execvp("mpirun", argv.data());
    _exit(127);
  }
  setpgid(pid, pid);
  return pid;
}

inline std::vector<worker::EngineRequest> mixed_requests() {
  std::vector<worker::EngineRequest> rs;
  for (int i = 0; i < 6; ++i) {
    worker::EngineRequest r{
        .prompt = {},
        .n = i % 3 == 2 ? 3 : 1,
        .sampling = {.temperature = i % 2 ? 0.8f : 0.0f, .seed = 11u + i, .top_logprobs = 2},
        .max_tokens = 10 + 3 * i,
        .ignore_eos = true};
    for (int t = 0; t < 5 + 7 * i; ++t) r.prompt.push_back((t * 31 + i * 17) % 353);
    rs.push_back(r);
  }
  return rs;
}

inline std::map<int, Result> run_all(Dispatcher& d, const std::vector<worker::EngineRequest>& rs,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  Collector c;
  int samples = 0;
  for (size_t i = 0; i < rs.size(); ++i) {
    auto id = d.submit(rs[i], c.fn(static_cast<int64_t>(i)));
    EXPECT_TRUE(id.has_value()) << id.error().to_string();
    samples += rs[i].n;
  }
  EXPECT_TRUE(c.wait(samples, timeout))
      << "requests did not finish within " << timeout.count() << " ms";
  std::map<int, Result> out;
  for (size_t i = 0; i < rs.size(); ++i) out[static_cast<int>(i)] = c.get(static_cast<int64_t>(i));
  return out;
}

}  // namespace ponder::coordinator::replica_test
