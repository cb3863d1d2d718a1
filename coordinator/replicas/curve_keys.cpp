// CURVE key pairs and their files (curve_keys.h).
#include "coordinator/replicas/curve_keys.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/check.h"
#include "common/private_file.h"
#include "common/strings.h"

namespace ponder::coordinator {
namespace {

// The first line of `text` that is neither empty nor a '#' comment, trimmed.
std::string key_line(const std::string& text) {
  for (const std::string& line : split(text, '\n')) {
    const std::string_view t = trim(line);
    if (!t.empty() && t.front() != '#') return std::string(t);
  }
  return "";
}

// Reads a small file through `fd` (closed here).
Expected<std::string> read_all(int fd, const std::string& path) {
  std::string text;
  char buf[1024];
  while (text.size() < 16 * 1024) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      close(fd);
      return error(StatusCode::kUnavailable, "cannot read %s: %s", path.c_str(), std::strerror(e));
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return text;
}

Expected<std::string> key_of_file(const std::string& text, const std::string& path,
                                  const char* what) {
  const std::string key = key_line(text);
  if (!is_curve_key(key))
    return error(
        StatusCode::kInvalidArgument,
        "%s is not a CURVE %s key file (expected the 40-character z85 key on a line of its own, as "
        "`ponder keys generate` writes it)",
        path.c_str(), what);
  return key;
}

bool exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

Status make_dir(const std::string& path, mode_t mode) {
  if (mkdir(path.c_str(), mode) != 0 && errno != EEXIST)
    return error(StatusCode::kUnavailable, "cannot create the directory %s: %s", path.c_str(),
                 std::strerror(errno));
  struct stat st {};
  if (stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return error(StatusCode::kInvalidArgument, "%s is not a directory", path.c_str());
  return {};
}

}  // namespace

Status curve_available() {
  if (zmq_has("curve")) return {};
  int major = 0, minor = 0, patch = 0;
  zmq_version(&major, &minor, &patch);
  return error(
      StatusCode::kFailedPrecondition,
      "this libzmq (%d.%d.%d) was built without CURVE, so replica links cannot be encrypted: "
      "install a "
      "libzmq built with libsodium (Debian's libzmq5 is), or set replica_curve: off to run them in "
      "the clear",
      major, minor, patch);
}

Expected<CurveKeyPair> generate_curve_key_pair() {
  PONDER_RETURN_IF_ERROR(curve_available());
  char pub[kCurveKeyZ85Length + 1] = {};
  char sec[kCurveKeyZ85Length + 1] = {};
  if (zmq_curve_keypair(pub, sec) != 0)
    return error(StatusCode::kInternal, "zmq_curve_keypair failed: %s", zmq_strerror(zmq_errno()));
  return CurveKeyPair{.public_key = pub, .secret_key = sec};
}

bool is_curve_key(const std::string& z85) {
  if (z85.size() != kCurveKeyZ85Length) return false;
  uint8_t bytes[32];
  return zmq_z85_decode(bytes, z85.c_str()) != nullptr;
}

Expected<std::string> curve_public_key(const std::string& secret_key) {
  PONDER_RETURN_IF_ERROR(curve_available());
  if (!is_curve_key(secret_key))
    return error(StatusCode::kInvalidArgument, "not a z85 CURVE secret key");
  char pub[kCurveKeyZ85Length + 1] = {};
  if (zmq_curve_public(pub, secret_key.c_str()) != 0)
    return error(StatusCode::kInternal, "zmq_curve_public failed: %s", zmq_strerror(zmq_errno()));
  return std::string(pub);
}

Status write_curve_secret_key(const std::string& path, const CurveKeyPair& pair,
                              const std::string& what) {
  return write_file_atomically(
      path,
      strformat("# CURVE secret key (z85) of ponder's replica links: %s. Keep it mode 0600.\n"
                "# Its public key: %s\n%s\n",
                what.c_str(), pair.public_key.c_str(), pair.secret_key.c_str()),
      0600);
}

Status write_curve_public_key(const std::string& path, const std::string& public_key,
                              const std::string& what) {
  return write_file_atomically(
      path,
      strformat("# CURVE public key (z85) of ponder's replica links: %s\n%s\n", what.c_str(),
                public_key.c_str()),
      0644);
}

Expected<CurveKeyPair> read_curve_secret_key(const std::string& path) {
  PONDER_ASSIGN_OR_RETURN(std::string text,
                          read_private_file(path, "CURVE secret key file", 16 * 1024));
  PONDER_ASSIGN_OR_RETURN(std::string secret, key_of_file(text, path, "secret"));
  auto pub = curve_public_key(secret);
  if (!pub) return tl::unexpected(pub.error().with_context(path));
  return CurveKeyPair{.public_key = *pub, .secret_key = secret};
}

Expected<std::string> read_curve_public_key(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return error(StatusCode::kNotFound, "cannot read the CURVE public key file %s: %s",
                 path.c_str(), std::strerror(errno));
  PONDER_ASSIGN_OR_RETURN(std::string text, read_all(fd, path));
  return key_of_file(text, path, "public");
}

Expected<std::vector<AllowedKey>> read_allowed_keys(const std::string& dir) {
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return error(StatusCode::kNotFound,
                 "the allow-list directory %s does not exist (its *.pub files are the replica "
                 "keys the coordinator accepts)",
                 dir.c_str());
  if (st.st_mode & 0022)
    return error(StatusCode::kInvalidArgument,
                 "the allow-list directory %s has mode %04o: group or others can add keys to it "
                 "(chmod go-w %s)",
                 dir.c_str(), static_cast<unsigned>(st.st_mode & 07777), dir.c_str());
  DIR* d = opendir(dir.c_str());
  if (!d)
    return error(StatusCode::kUnavailable, "cannot list %s: %s", dir.c_str(), std::strerror(errno));
  std::vector<std::string> names;
  while (const dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".pub") == 0) names.push_back(name);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  std::vector<AllowedKey> keys;
  for (const std::string& name : names) {
    const std::string path = dir + "/" + name;
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      return error(StatusCode::kUnavailable, "cannot read %s: %s", path.c_str(),
                   std::strerror(errno));
    struct stat fst {};
    if (fstat(fd, &fst) != 0 || !S_ISREG(fst.st_mode)) {
      close(fd);
      return error(StatusCode::kInvalidArgument, "%s is not a regular file", path.c_str());
    }
    if (fst.st_mode & 0022) {
      close(fd);
      return error(StatusCode::kInvalidArgument,
                   "allowed key %s has mode %04o: group or others can replace it (chmod go-w %s)",
                   path.c_str(), static_cast<unsigned>(fst.st_mode & 07777), path.c_str());
    }
    PONDER_ASSIGN_OR_RETURN(std::string text, read_all(fd, path));
    PONDER_ASSIGN_OR_RETURN(std::string key, key_of_file(text, path, "public"));
    keys.push_back({.name = name.substr(0, name.size() - 4), .public_key = key});
  }
  if (keys.empty())
    return error(
        StatusCode::kInvalidArgument,
        "the allow-list directory %s holds no *.pub key: the coordinator would accept no replica",
        dir.c_str());
  return keys;
}

std::string curve_server_secret_path(const std::string& dir) { return dir + "/server.key"; }
std::string curve_server_public_path(const std::string& dir) { return dir + "/server.pub"; }
std::string curve_replica_secret_path(const std::string& dir, int replica) {
  return strformat("%s/replica-%d.key", dir.c_str(), replica);
}
std::string curve_replica_public_path(const std::string& dir, int replica) {
  return strformat("%s/replica-%d.pub", dir.c_str(), replica);
}
std::string curve_allowed_dir(const std::string& dir) { return dir + "/allowed"; }

Status generate_curve_keys_dir(const std::string& dir, int replicas, std::vector<std::string>* made,
                               std::vector<std::string>* kept) {
  if (replicas < 0)
    return error(StatusCode::kInvalidArgument, "replicas must not be negative, got %d", replicas);
  PONDER_RETURN_IF_ERROR(curve_available());
  const bool fresh = !exists(dir);
  PONDER_RETURN_IF_ERROR(make_dir(dir, 0700));
  if (fresh) chmod(dir.c_str(), 0700);  // whatever the umask
  PONDER_RETURN_IF_ERROR(make_dir(curve_allowed_dir(dir), 0755));
  // One pair: kept when its secret key is there (its public file rewritten if missing), else made.
  auto pair = [&](const std::string& secret, const std::string& pub, const std::string& what,
                  const std::string& allowed) -> Status {
    if (exists(secret)) {
      PONDER_ASSIGN_OR_RETURN(CurveKeyPair old, read_curve_secret_key(secret));
      if (kept) kept->push_back(secret);
      if (!exists(pub)) {
        PONDER_RETURN_IF_ERROR(write_curve_public_key(pub, old.public_key, what));
        if (made) made->push_back(pub);
      }
      return {};
    }
    PONDER_ASSIGN_OR_RETURN(CurveKeyPair fresh_pair, generate_curve_key_pair());
    PONDER_RETURN_IF_ERROR(write_curve_secret_key(secret, fresh_pair, what));
    PONDER_RETURN_IF_ERROR(write_curve_public_key(pub, fresh_pair.public_key, what));
    if (made) made->insert(made->end(), {secret, pub});
    if (!allowed.empty()) {
      PONDER_RETURN_IF_ERROR(write_curve_public_key(allowed, fresh_pair.public_key, what));
      if (made) made->push_back(allowed);
    }
    return {};
  };
  PONDER_RETURN_IF_ERROR(
      pair(curve_server_secret_path(dir), curve_server_public_path(dir), "the coordinator", ""));
  for (int r = 0; r < replicas; ++r)
    PONDER_RETURN_IF_ERROR(pair(curve_replica_secret_path(dir, r),
                                curve_replica_public_path(dir, r), strformat("replica %d", r),
                                strformat("%s/replica-%d.pub", curve_allowed_dir(dir).c_str(), r)));
  return {};
}

Expected<CurveServerKeys> load_curve_server_keys(const std::string& dir) {
  PONDER_RETURN_IF_ERROR(curve_available());
  PONDER_ASSIGN_OR_RETURN(CurveKeyPair server,
                          read_curve_secret_key(curve_server_secret_path(dir)));
  const std::string pub_path = curve_server_public_path(dir);
  if (exists(pub_path)) {
    PONDER_ASSIGN_OR_RETURN(std::string pub, read_curve_public_key(pub_path));
    if (pub != server.public_key)
      return error(
          StatusCode::kInvalidArgument,
          "%s is not the public key of %s: replicas given it would not reach this coordinator",
          pub_path.c_str(), curve_server_secret_path(dir).c_str());
  }
  PONDER_ASSIGN_OR_RETURN(std::vector<AllowedKey> allowed,
                          read_allowed_keys(curve_allowed_dir(dir)));
  return CurveServerKeys{.secret_key = server.secret_key, .allowed = std::move(allowed)};
}

Expected<CurveClientKeys> load_curve_client_keys(const std::string& server_public_path,
                                                 const std::string& own_secret_path) {
  PONDER_RETURN_IF_ERROR(curve_available());
  PONDER_ASSIGN_OR_RETURN(std::string server, read_curve_public_key(server_public_path));
  PONDER_ASSIGN_OR_RETURN(CurveKeyPair own, read_curve_secret_key(own_secret_path));
  return CurveClientKeys{.server_key = server, .own = own, .own_name = own_secret_path};
}

}  // namespace ponder::coordinator
