// Reading the environment once.
#include "common/process_env.h"

#include <cstdlib>

namespace ponder {
namespace {
std::optional<int> env_int(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  char* end = nullptr;
  long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < 0) return std::nullopt;
  return static_cast<int>(x);
}
}  // namespace

ProcessEnv ProcessEnv::read() {
  ProcessEnv env;
  env.slurm_localid = env_int("SLURM_LOCALID");
  env.ompi_local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK");
  env.ompi_local_size = env_int("OMPI_COMM_WORLD_LOCAL_SIZE");
  env.ompi_world_size = env_int("OMPI_COMM_WORLD_SIZE");
  if (const char* v = std::getenv("CUDA_VISIBLE_DEVICES")) env.cuda_visible_devices = v;
  if (const char* v = std::getenv("SLURM_JOB_ID"); v && *v) env.slurm_job_id = v;
  if (const char* v = std::getenv("SLURM_JOB_NODELIST"); v && *v) env.slurm_job_nodelist = v;
  if (const char* v = std::getenv("XDG_RUNTIME_DIR"); v && *v) env.xdg_runtime_dir = v;
  if (const char* v = std::getenv("TMPDIR"); v && *v) env.tmpdir = v;
  return env;
}

int ProcessEnv::local_index() const {
  if (slurm_localid) return *slurm_localid;
  if (ompi_local_rank) return *ompi_local_rank;
  return 0;
}

}  // namespace ponder
