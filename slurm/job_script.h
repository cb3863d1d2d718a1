// The sbatch script of a deployment, and the srun step that starts its ranks. Both are plain
// functions of the resolved deployment, so `ponder slurm submit --dry-run` prints exactly what a
// submit would run (golden-file tested).
//
// Inside the allocation: the batch script runs on the first node and becomes the coordinator
// (`ponder slurm launch`), which starts each replica's ranks as one `srun --mpi=pmix` step of its
// own (replica_step_command; a rank that dies aborts its replica's MPI world only) reading its
// settings from a file in the job's directory.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "slurm/job_layout.h"
#include "slurm/slurm_options.h"

namespace ponder::slurm {

struct JobScriptInput {
  SlurmOptions slurm;       // output_dir absolute, ponder set
  JobLayout layout;
  std::string deploy_yaml;  // the resolved deployment the job runs (serve keys + slurm:)
  std::string source;       // the deploy file it came from, for the header
};

// Errors for values that cannot go into a script safely (a newline in an sbatch argument, a
// space in output_dir, the heredoc's end marker inside the deployment).
Status check_script_input(const JobScriptInput& input);
std::string render_sbatch_script(const JobScriptInput& input);

// The job's directory: <output_dir>/<job id>.
std::string job_dir(const std::string& output_dir, const std::string& job_id);
// The log of rank `rank` (its index among all the deployment's ranks) in one run (the restart
// count): <job dir>/rank-<job>_<rank>.run<restart>.log, appended to; the rank writes it itself.
std::string rank_log_path(const std::string& job_dir, const std::string& job_id, int rank, int restart_count);
// What a replica's srun says (and its ranks print before their own log opens):
// <job dir>/replica<r>.run<restart>.log.
std::string replica_step_log_path(const std::string& job_dir, int replica, int restart_count);
// The settings of replica r's ranks in one run: <job dir>/task.run<restart>.replica<r>.json.
std::string task_file_path(const std::string& job_dir, int replica, int restart_count);
// The batch (coordinator) log: <output_dir>/ponder-<job>.log ("%j" for sbatch's --output).
std::string batch_log_path(const std::string& output_dir, const std::string& job_id);

// `srun --mpi=pmix --relative=… … <ponder> slurm task <task_file>`: replica r's ranks, on its
// nodes, with its share of their CPUs (--exact) and GPUs.
std::vector<std::string> replica_step_command(const SlurmOptions& slurm, const JobLayout& layout, int replica,
                                              const std::string& job_id, const std::string& task_file);

// Single-quoted for sh when it needs to be.
std::string shell_quote(const std::string& word);

}  // namespace ponder::slurm
