// LocalServer: the `ponder serve` a sweep with `target: serve:` starts for its run — spawned in a
// session of its own (so a Ctrl-C at the terminal reaches the runner, which stops it in order),
// its output appended to a log file, its URL read from the line it prints when ready, and
// stopped by pid (SIGTERM, then SIGKILL of its process tree after a deadline).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace ponder::experiments {

class LocalServer {
 public:
  // argv: the ponder binary, "serve", flags. Waits until the server prints its URL, exits, or
  // `timeout` passes (then it is killed).
  static Expected<std::unique_ptr<LocalServer>> start(const std::vector<std::string>& argv,
                                                      const std::string& log_path,
                                                      std::chrono::seconds timeout);
  ~LocalServer();  // stop()
  LocalServer(const LocalServer&) = delete;
  LocalServer& operator=(const LocalServer&) = delete;

  const std::string& url() const { return url_; }  // "http://127.0.0.1:PORT/v1"
  pid_t pid() const { return pid_; }
  // SIGTERM (the server drains), a bounded wait, then SIGKILL of the tree. Idempotent.
  void stop(std::chrono::seconds grace = std::chrono::seconds(60));

 private:
  LocalServer() = default;
  struct Reader;
  pid_t pid_ = -1;
  std::string url_;
  std::shared_ptr<Reader> reader_;
};

}  // namespace ponder::experiments
