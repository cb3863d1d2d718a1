#include "common/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/strings.h"

namespace ponder {

std::string CommandResult::first_error_line() const {
  for (const std::string* text : {&err, &out})
    for (const std::string& line : split(*text, '\n'))
      if (!trim(line).empty()) return std::string(trim(line));
  return "";
}

bool on_path(const std::string& program) {
  auto executable = [](const std::string& path) {
    struct stat st{};
    return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
  };
  if (program.find('/') != std::string::npos) return executable(program);
  const char* path = std::getenv("PATH");
  for (const std::string& dir : split(path ? path : "/usr/bin:/bin", ':'))
    if (!dir.empty() && executable(dir + "/" + program)) return true;
  return false;
}

Expected<CommandResult> run_command(const std::vector<std::string>& argv,
                                    std::chrono::milliseconds timeout) {
  if (argv.empty()) return error(StatusCode::kInvalidArgument, "run_command: empty argv");
  if (!on_path(argv[0]))
    return error(StatusCode::kNotFound, "'%s' is not on PATH", argv[0].c_str());
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return error(StatusCode::kInternal, "pipe: %s", std::strerror(errno));
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    return error(StatusCode::kInternal, "pipe: %s", std::strerror(errno));
  }
  std::vector<std::string> copy = argv;
  std::vector<char*> cargv;
  for (auto& w : copy) cargv.push_back(w.data());
  cargv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return error(StatusCode::kUnavailable, "fork: %s", std::strerror(errno));
  if (pid == 0) {
    setpgid(0, 0);  // a group of its own, so a timeout kills what it started too
    dup2(out_pipe[1], STDOUT_FILENO);
    dup2(err_pipe[1], STDERR_FILENO);
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0) dup2(null, STDIN_FILENO);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execvp(cargv[0], cargv.data());
    std::fprintf(stderr, "cannot run %s: %s\n", cargv[0], std::strerror(errno));
    _exit(127);
  }
  setpgid(pid, pid);
  close(out_pipe[1]);
  close(err_pipe[1]);
  CommandResult result;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timed_out = false;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  while (open_fds > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    int n = poll(fds, 2, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[4096];
      ssize_t got = read(fds[i].fd, buf, sizeof(buf));
      if (got > 0) {
        sinks[i]->append(buf, static_cast<size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (pollfd& f : fds)
    if (f.fd >= 0) close(f.fd);
  if (timed_out) kill(-pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out)
    return error(StatusCode::kTimeout, "'%s' did not finish within %lld ms", argv[0].c_str(),
                 (long long)timeout.count());
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

}  // namespace ponder
