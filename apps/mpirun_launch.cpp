// mpirun launcher.
#include "apps/mpirun_launch.h"

#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "common/strings.h"

namespace ponder::apps {

Expected<std::string> self_path() {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return error(StatusCode::kInternal, "cannot find the ponder binary (/proc/self/exe)");
  self[n] = '\0';
  return std::string(self);
}

namespace {

// The LD_PRELOAD shim of apps/loopback_bind.c, in lib/ beside the binary's bin/.
Expected<std::string> loopback_bind_path(const std::string& self) {
  namespace fs = std::filesystem;
  const fs::path lib = fs::path(self).parent_path() / ".." / "lib";
  const fs::path path = (lib / "libponder_loopback_bind.so").lexically_normal();
  if (access(path.c_str(), R_OK) != 0)
    return error(StatusCode::kFailedPrecondition,
                 "cannot find %s, which keeps mpirun's listeners on loopback (the ponder target "
                 "builds it; a copied ponder needs it in ../lib from its binary)",
                 path.c_str());
  return path.string();
}

}  // namespace

Expected<std::vector<std::string>> mpirun_command(int ranks, const std::string& subcommand,
                                                  const std::vector<std::string>& args) {
  PONDER_ASSIGN_OR_RETURN(std::string self, self_path());
  PONDER_ASSIGN_OR_RETURN(std::string guard, loopback_bind_path(self));
  setenv("OMPI_MCA_btl", "self,vader", 0);
  setenv("OMPI_MCA_btl_vader_single_copy_mechanism", "none", 0);
  setenv("OMPI_MCA_oob_tcp_if_include", "lo", 0);
  // NCCL's bootstrap listens on NCCL_SOCKET_IFNAME's address (by default the first non-loopback
  // interface); the ranks of one mpirun share a machine, so loopback will do.
  setenv("NCCL_SOCKET_IFNAME", "lo", 0);
  // hwloc's gl plugin probes X displays (127.0.0.1:6000-6009 and their Unix sockets) at every
  // mpirun and rank start: connections a server has no business making.
  setenv("HWLOC_COMPONENTS", "-gl", 0);
  const char* preload = std::getenv("LD_PRELOAD");
  if (!preload || !*preload) {
    setenv("LD_PRELOAD", guard.c_str(), 1);
  } else if (std::string(preload).find(guard) == std::string::npos) {
    setenv("LD_PRELOAD", strformat("%s:%s", preload, guard.c_str()).c_str(), 1);
  }
  std::vector<std::string> words = {"mpirun", "--oversubscribe", "--bind-to", "none", "-np",
                                    std::to_string(ranks)};
  if (geteuid() == 0) words.insert(words.begin() + 1, "--allow-run-as-root");
  words.push_back(self);
  words.push_back(subcommand);
  words.insert(words.end(), args.begin(), args.end());
  return words;
}

Status exec_mpirun(int ranks, const char* subcommand, int argc, char** argv) {
  PONDER_ASSIGN_OR_RETURN(auto words,
                          mpirun_command(ranks, subcommand, std::vector<std::string>(argv, argv + argc)));
  std::vector<char*> cargv;
  for (auto& w : words) cargv.push_back(w.data());
  cargv.push_back(nullptr);
  std::fflush(stdout);
  execvp("mpirun", cargv.data());
  return error(StatusCode::kUnavailable, "cannot start mpirun (is openmpi-bin installed?): %s",
               std::strerror(errno));
}

}  // namespace ponder::apps
