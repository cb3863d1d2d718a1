#include "common/private_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace ponder {

Expected<std::string> read_private_file(const std::string& path, const char* what,
                                        int64_t max_bytes) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return error(StatusCode::kNotFound, "cannot read the %s %s: %s", what, path.c_str(),
                 std::strerror(errno));
  struct stat st {};
  Status failed;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    failed = error(StatusCode::kInvalidArgument, "%s %s is not a regular file", what, path.c_str());
  } else if (st.st_mode & 0077) {
    failed = error(StatusCode::kInvalidArgument,
                   "%s %s has mode %04o: group or others can read the key (chmod 600 %s)", what,
                   path.c_str(), static_cast<unsigned>(st.st_mode & 07777), path.c_str());
  } else if (st.st_size > max_bytes) {
    failed = error(StatusCode::kInvalidArgument, "%s %s is %lld bytes, more than %lld", what,
                   path.c_str(), (long long)st.st_size, (long long)max_bytes);
  }
  std::string text;
  if (failed.ok()) {
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0 && static_cast<int64_t>(text.size()) <= max_bytes)
      text.append(buf, static_cast<size_t>(n));
    if (n < 0)
      failed = error(StatusCode::kInternal, "cannot read the %s %s: %s", what, path.c_str(),
                     std::strerror(errno));
  }
  close(fd);
  if (!failed.ok()) return tl::unexpected(std::move(failed));
  return text;
}

Status write_file_atomically(const std::string& path, const std::string& content, mode_t mode) {
  const std::string tmp = path + ".tmp";
  unlink(tmp.c_str());
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0)
    return error(StatusCode::kUnavailable, "cannot create %s: %s", tmp.c_str(), std::strerror(errno));
  fchmod(fd, mode);  // whatever the umask
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  const bool ok = done == content.size() && fsync(fd) == 0;
  close(fd);
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    unlink(tmp.c_str());
    return error(StatusCode::kUnavailable, "cannot write %s: %s", path.c_str(), why.c_str());
  }
  return {};
}

}  // namespace ponder
