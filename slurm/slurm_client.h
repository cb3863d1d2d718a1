// SlurmClient: Slurm's own commands (sbatch, squeue, scontrol, scancel), run as programs with
// deadlines and their answers parsed. Nothing here parses Slurm's host-list syntax (node[01-04]):
// `scontrol show hostnames` expands it.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace ponder::slurm {

// One job as `scontrol show job -o` reports it.
struct JobInfo {
  std::string id;
  std::map<std::string, std::string> fields;  // JobState, Reason, NodeList, StdOut, Comment, …
  std::string get(const std::string& key) const;
  std::string state() const { return get("JobState"); }
  bool active() const;  // PENDING, RUNNING, CONFIGURING, COMPLETING, REQUEUED, SUSPENDED, …
};

// The comment every job `ponder slurm submit` makes carries, so that `list` finds them.
inline constexpr const char* kJobComment = "ponder";

class SlurmClient {
 public:
  explicit SlurmClient(std::chrono::milliseconds timeout = std::chrono::seconds(30)) : timeout_(timeout) {}

  // An error naming each of `commands` that is not on PATH.
  static Status require(const std::vector<std::string>& commands);

  // sbatch --parsable SCRIPT: the job id.
  Expected<std::string> submit(const std::string& script_path) const;
  // kNotFound when Slurm no longer (or never) knew the job.
  Expected<JobInfo> job(const std::string& job_id) const;
  // Node names of a host list (scontrol show hostnames).
  Expected<std::vector<std::string>> hostnames(const std::string& host_list) const;
  // This user's jobs whose comment is kJobComment: id, name, state.
  Expected<std::vector<JobInfo>> my_jobs() const;
  // scancel [--signal=SIGNAL [--batch]] JOB.
  Status cancel(const std::string& job_id, const std::string& signal = "", bool batch_only = false) const;
  // scontrol requeue JOB.
  Status requeue(const std::string& job_id) const;

 private:
  Expected<std::string> run(const std::vector<std::string>& argv) const;
  std::chrono::milliseconds timeout_;
};

// "Key=Value Key=Value …" of one `scontrol show -o` line (values with spaces are kept whole).
std::map<std::string, std::string> parse_scontrol_line(const std::string& line);

// Whether a job id looks like one: digits, optionally "_N" (array) or "+N" (het job).
bool valid_job_id(const std::string& id);

}  // namespace ponder::slurm
