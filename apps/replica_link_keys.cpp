// The replica links' keys of one deployment run (replica_link_keys.h).
#include "apps/replica_link_keys.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/check.h"
#include "common/log.h"
#include "common/strings.h"

namespace ponder::apps {

namespace fs = std::filesystem;

namespace {

constexpr const char* kOwnerFile = "coordinator.pid";  // in a run's directory: who removes it

// Directories like `tmpl` (its "XXXXXX" any six characters) beside it, of this user, left by a
// coordinator that is gone (killed before it could remove them): their keys open nothing now, but
// secret keys should not lie about. Only directories that name their coordinator are touched.
void remove_stale_run_dirs(const std::string& tmpl) {
  const fs::path parent = fs::path(tmpl).parent_path();
  const std::string prefix =
      fs::path(tmpl).filename().string().substr(0, fs::path(tmpl).filename().string().size() - 6);
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(parent, ec)) {
    const std::string name = e.path().filename().string();
    struct stat st {};
    if (name.size() != prefix.size() + 6 || name.compare(0, prefix.size(), prefix) != 0 ||
        lstat(e.path().c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
      continue;
    std::ifstream in(e.path() / kOwnerFile);
    long pid = 0;
    if (!(in >> pid) || pid <= 0 || kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH)
      continue;
    std::error_code rm;
    fs::remove_all(e.path(), rm);
    if (!rm)
      PONDER_LOG(kInfo, "serve",
                 "removed %s, the CURVE keys of a coordinator (pid %ld) that is gone",
                 e.path().c_str(), pid);
  }
}

}  // namespace

Expected<std::unique_ptr<ReplicaLinkKeys>> ReplicaLinkKeys::prepare(const ServeConfig& c,
                                                                    const std::string& run_dir) {
  std::unique_ptr<ReplicaLinkKeys> keys(new ReplicaLinkKeys());
  if (!c.replica_curve) {
    PONDER_LOG(kWarn, "serve",
               "replica_curve is off: the replica links are neither encrypted nor authenticated, "
               "and anyone who reaches the replica endpoint can register as a replica");
    return keys;
  }
  PONDER_RETURN_IF_ERROR(coordinator::curve_available());
  if (!c.curve_keys_dir.empty()) {
    keys->dir_ = c.curve_keys_dir;
  } else {
    std::string dir = run_dir;
    if (dir.size() >= 6 && dir.compare(dir.size() - 6, 6, "XXXXXX") == 0) {
      remove_stale_run_dirs(dir);
      if (!mkdtemp(dir.data()))  // mode 0700
        return error(StatusCode::kUnavailable,
                     "cannot make a directory for this run's CURVE keys from %s: %s",
                     run_dir.c_str(), std::strerror(errno));
    } else {
      std::error_code ec;
      fs::remove_all(dir, ec);
      if (mkdir(dir.c_str(), 0700) != 0)
        return error(StatusCode::kUnavailable,
                     "cannot make the directory %s for this run's CURVE keys: %s", dir.c_str(),
                     std::strerror(errno));
    }
    chmod(dir.c_str(), 0700);  // whatever the umask
    keys->dir_ = dir;
    keys->ephemeral_ = true;  // from here on the destructor removes it
    {
      std::ofstream owner(dir + "/" + kOwnerFile);
      owner << getpid() << "\n";
    }
    PONDER_RETURN_IF_ERROR(coordinator::generate_curve_keys_dir(dir, c.replicas));
  }
  PONDER_ASSIGN_OR_RETURN(keys->server_, coordinator::load_curve_server_keys(keys->dir_));
  PONDER_LOG(kInfo, "serve", "replica links: CURVE with %s keys in %s",
             keys->ephemeral_ ? "this run's" : "the operator's", keys->dir_.c_str());
  return keys;
}

ReplicaLinkKeys::~ReplicaLinkKeys() {
  if (!ephemeral_ || dir_.empty()) return;
  std::error_code ec;
  fs::remove_all(dir_, ec);
  if (ec)
    PONDER_LOG(kWarn, "serve", "cannot remove this run's CURVE keys in %s: %s", dir_.c_str(),
               ec.message().c_str());
}

std::vector<std::string> ReplicaLinkKeys::replica_args(int replica) const {
  if (!server_.enabled()) return {};
  return {"--curve-server-key", coordinator::curve_server_public_path(dir_), "--curve-key",
          coordinator::curve_replica_secret_path(dir_, replica)};
}

std::string run_keys_template(const ProcessEnv& env) {
  std::string parent = "/tmp";
  if (env.tmpdir && access(env.tmpdir->c_str(), W_OK | X_OK) == 0) parent = *env.tmpdir;
  if (env.xdg_runtime_dir && access(env.xdg_runtime_dir->c_str(), W_OK | X_OK) == 0)
    parent = *env.xdg_runtime_dir;
  while (parent.size() > 1 && parent.back() == '/') parent.pop_back();
  return parent + "/ponder-curve-XXXXXX";
}

Status check_replica_link_settings(const ServeConfig& c, bool load_files) {
  if (c.curve_keys_dir.empty()) return {};
  if (!c.replica_curve)
    return error(StatusCode::kInvalidArgument,
                 "'curve_keys_dir' is set but 'replica_curve' is off: turn replica_curve on, or "
                 "drop curve_keys_dir");
  if (!load_files) return {};
  auto server = coordinator::load_curve_server_keys(c.curve_keys_dir);
  if (!server) return server.error().with_context("'curve_keys_dir'");
  for (int r = 0; r < c.replicas; ++r) {
    const std::string path = coordinator::curve_replica_secret_path(c.curve_keys_dir, r);
    auto pair = coordinator::read_curve_secret_key(path);
    if (!pair)
      return pair.error().with_context(strformat(
          "'curve_keys_dir' has no usable key for replica %d of %d (ponder keys generate --dir %s "
          "--replicas %d adds what is missing)",
          r, c.replicas, c.curve_keys_dir.c_str(), c.replicas));
    const bool allowed = std::any_of(
        server->allowed.begin(), server->allowed.end(),
        [&](const coordinator::AllowedKey& k) { return k.public_key == pair->public_key; });
    if (!allowed)
      return error(StatusCode::kInvalidArgument,
                   "'curve_keys_dir': the public key of %s is not in %s, so the coordinator would "
                   "refuse replica %d",
                   path.c_str(), coordinator::curve_allowed_dir(c.curve_keys_dir).c_str(), r);
  }
  return {};
}

}  // namespace ponder::apps
