// fork/exec with a pipe for the child's stdout+stderr; a thread copies it to the log and
// watches for "is served at http[s]://…/v1".
#include "experiments/local_server.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <regex>
#include <thread>

#include "common/log.h"
#include "common/process_tree.h"

namespace ponder::experiments {

struct LocalServer::Reader {
  std::mutex mu;
  std::condition_variable cv;
  std::string url;
  bool eof = false;
  std::string tail;  // the last lines, for an error message
  std::thread thread;
};

namespace {

bool wait_exit(pid_t pid, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace

Expected<std::unique_ptr<LocalServer>> LocalServer::start(const std::vector<std::string>& argv,
                                                          const std::string& log_path,
                                                          std::chrono::seconds timeout) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0)
    return error(StatusCode::kInternal, "pipe: %s", std::strerror(errno));
  const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    close(fds[0]), close(fds[1]);
    return error(StatusCode::kUnavailable, "%s: %s", log_path.c_str(), std::strerror(errno));
  }
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]), close(fds[1]), close(log_fd);
    return error(StatusCode::kInternal, "fork: %s", std::strerror(errno));
  }
  if (pid == 0) {
    setsid();
    dup2(fds[1], STDOUT_FILENO);
    dup2(fds[1], STDERR_FILENO);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);  // the runner blocks SIGINT/SIGTERM for asio
    execv(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    _exit(127);
  }
  close(fds[1]);
  std::unique_ptr<LocalServer> server(new LocalServer());
  server->pid_ = pid;
  auto reader = std::make_shared<Reader>();
  server->reader_ = reader;
  const int in = fds[0];
  reader->thread = std::thread([reader, in, log_fd] {
    const std::regex ready(R"(is served at (https?://\S+/v1))");
    std::string line;
    char buf[4096];
    while (true) {
      const ssize_t n = read(in, buf, sizeof buf);
      if (n <= 0) break;
      (void)!write(log_fd, buf, n);
      for (ssize_t i = 0; i < n; ++i) {
        if (buf[i] != '\n') {
          line.push_back(buf[i]);
          continue;
        }
        std::smatch m;
        std::lock_guard lock(reader->mu);
        if (reader->url.empty() && std::regex_search(line, m, ready)) {
          reader->url = m[1];
          reader->cv.notify_all();
        }
        reader->tail += line + "\n";
        if (reader->tail.size() > 4000) reader->tail.erase(0, reader->tail.size() - 4000);
        line.clear();
      }
    }
    close(in);
    close(log_fd);
    std::lock_guard lock(reader->mu);
    reader->eof = true;
    reader->cv.notify_all();
  });
  std::unique_lock lock(reader->mu);
  reader->cv.wait_for(lock, timeout, [&] { return !reader->url.empty() || reader->eof; });
  if (reader->url.empty()) {
    const std::string tail = reader->tail;
    const bool exited = reader->eof;
    lock.unlock();
    server->stop(std::chrono::seconds(5));
    return error(StatusCode::kUnavailable, "ponder serve %s (its log: %s):\n%s",
                 exited ? "exited before it was ready" : "did not become ready in time",
                 log_path.c_str(), tail.c_str());
  }
  server->url_ = reader->url;
  PONDER_LOG(kInfo, "sweep", "started ponder serve (pid %d) at %s", static_cast<int>(pid),
             server->url_.c_str());
  return server;
}

void LocalServer::stop(std::chrono::seconds grace) {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    if (!wait_exit(pid_, grace)) {
      PONDER_LOG(kWarn, "sweep", "ponder serve (pid %d) did not stop in %llds; killing it",
                 static_cast<int>(pid_), static_cast<long long>(grace.count()));
      signal_tree(pid_, SIGKILL);
      wait_exit(pid_, std::chrono::seconds(10));
    }
    pid_ = -1;
  }
  if (reader_ && reader_->thread.joinable()) {
    // The pipe closes when the last process holding it exits; a straggler that keeps it open
    // must not hang the runner (the thread owns what it touches).
    std::unique_lock lock(reader_->mu);
    const bool eof = reader_->cv.wait_for(lock, std::chrono::seconds(10), [&] { return reader_->eof; });
    lock.unlock();
    if (eof) reader_->thread.join(); else reader_->thread.detach();
  }
}

LocalServer::~LocalServer() { stop(); }

}  // namespace ponder::experiments
