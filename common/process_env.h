// ProcessEnv: every environment variable ponder reads, read once at start-up into one struct.
// Library code takes the struct; it never calls getenv itself.
#pragma once

#include <optional>
#include <string>

namespace ponder {

struct ProcessEnv {
  std::optional<int> slurm_localid;           // SLURM_LOCALID: task index on its node (srun)
  std::optional<int> ompi_local_rank;         // OMPI_COMM_WORLD_LOCAL_RANK (mpirun)
  std::optional<int> ompi_local_size;         // OMPI_COMM_WORLD_LOCAL_SIZE: ranks on this node
  std::optional<int> ompi_world_size;         // OMPI_COMM_WORLD_SIZE: set when under mpirun
  std::optional<std::string> cuda_visible_devices;  // CUDA_VISIBLE_DEVICES as given
  std::optional<std::string> slurm_job_id;          // SLURM_JOB_ID: a sweep's provenance
  std::optional<std::string> slurm_job_nodelist;    // SLURM_JOB_NODELIST: likewise
  std::optional<std::string> xdg_runtime_dir;       // XDG_RUNTIME_DIR: the user's private tmpfs
  std::optional<std::string> tmpdir;                // TMPDIR

  static ProcessEnv read();
  // The index of this task among the tasks of its node: SLURM_LOCALID, else the MPI local rank,
  // else 0.
  int local_index() const;
};

}  // namespace ponder
