// mpirun launcher.
#include "apps/mpirun_launch.h"

#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace ponder::apps {

Expected<std::string> self_path() {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return error(StatusCode::kInternal, "cannot find the ponder binary (/proc/self/exe)");
  self[n] = '\0';
  return std::string(self);
}

Expected<std::vector<std::string>> mpirun_command(int ranks, const std::string& subcommand,
                                                  const std::vector<std::string>& args) {
  PONDER_ASSIGN_OR_RETURN(std::string self, self_path());
  setenv("OMPI_MCA_btl", "self,vader", 0);
  setenv("OMPI_MCA_btl_vader_single_copy_mechanism", "none", 0);
  setenv("OMPI_MCA_oob_tcp_if_include", "lo", 0);
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
