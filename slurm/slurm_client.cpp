#include "slurm/slurm_client.h"

#include <pwd.h>
#include <unistd.h>

#include "common/check.h"
#include "common/strings.h"
#include "common/subprocess.h"

namespace ponder::slurm {

std::string JobInfo::get(const std::string& key) const {
  auto it = fields.find(key);
  return it == fields.end() ? "" : it->second;
}

bool JobInfo::active() const {
  const std::string s = state();
  return s == "PENDING" || s == "RUNNING" || s == "CONFIGURING" || s == "COMPLETING" || s == "REQUEUED" ||
         s == "REQUEUE_HOLD" || s == "REQUEUE_FED" || s == "RESIZING" || s == "SUSPENDED" || s == "STOPPED" ||
         s == "SIGNALING" || s == "STAGE_OUT";
}

std::map<std::string, std::string> parse_scontrol_line(const std::string& line) {
  std::map<std::string, std::string> out;
  std::string last;
  for (const std::string& word : split(trim(line), ' ')) {
    if (word.empty()) continue;
    const size_t eq = word.find('=');
    // A word without '=' (or one starting with it) continues the previous value ("Command=/a b").
    if (eq == std::string::npos || eq == 0) {
      if (!last.empty()) out[last] += " " + word;
      continue;
    }
    last = word.substr(0, eq);
    out[last] = word.substr(eq + 1);
  }
  return out;
}

bool valid_job_id(const std::string& id) {
  if (id.empty() || id.size() > 32) return false;
  size_t i = 0;
  while (i < id.size() && id[i] >= '0' && id[i] <= '9') ++i;
  if (i == 0) return false;
  if (i == id.size()) return true;
  if (id[i] != '_' && id[i] != '+') return false;
  size_t j = i + 1;
  while (j < id.size() && id[j] >= '0' && id[j] <= '9') ++j;
  return j == id.size() && j > i + 1;
}

Status SlurmClient::require(const std::vector<std::string>& commands) {
  std::vector<std::string> missing;
  for (const std::string& c : commands)
    if (!on_path(c)) missing.push_back(c);
  if (missing.empty()) return {};
  const std::string list = join(missing, ", ");
  return error(StatusCode::kFailedPrecondition,
               "the Slurm command%s %s %s not on PATH: run this on a Slurm login node (Debian/Ubuntu: "
               "apt-get install slurm-client), or with --dry-run to only print the job script",
               missing.size() == 1 ? "" : "s", list.c_str(), missing.size() == 1 ? "is" : "are");
}

Expected<std::string> SlurmClient::run(const std::vector<std::string>& argv) const {
  auto result = run_command(argv, timeout_);
  if (!result) {
    if (result.error().code() == StatusCode::kNotFound) PONDER_RETURN_IF_ERROR(require({argv[0]}));
    return tl::unexpected(result.error());
  }
  if (result->exit_code != 0) {
    const std::string words = join(argv, " ");
    return error(StatusCode::kUnavailable, "%s failed (exit %d): %s", words.c_str(), result->exit_code,
                 result->first_error_line().c_str());
  }
  return result->out;
}

Expected<std::string> SlurmClient::submit(const std::string& script_path) const {
  PONDER_ASSIGN_OR_RETURN(std::string out, run({"sbatch", "--parsable", script_path}));
  // "12" or "12;cluster" (federations).
  std::string id(trim(out));
  id = id.substr(0, id.find(';'));
  if (!valid_job_id(id))
    return error(StatusCode::kInternal, "sbatch --parsable printed '%s', not a job id", std::string(trim(out)).c_str());
  return id;
}

Expected<JobInfo> SlurmClient::job(const std::string& job_id) const {
  if (!valid_job_id(job_id))
    return error(StatusCode::kInvalidArgument, "'%s' is not a Slurm job id", job_id.c_str());
  auto result = run_command({"scontrol", "show", "job", "-o", job_id}, timeout_);
  if (!result) {
    if (result.error().code() == StatusCode::kNotFound) PONDER_RETURN_IF_ERROR(require({"scontrol"}));
    return tl::unexpected(result.error());
  }
  if (result->exit_code != 0) {
    const std::string why = result->first_error_line();
    if (why.find("Invalid job id") != std::string::npos)
      return error(StatusCode::kNotFound, "Slurm does not know job %s (finished jobs are forgotten after MinJobAge)",
                   job_id.c_str());
    return error(StatusCode::kUnavailable, "scontrol show job %s failed: %s", job_id.c_str(), why.c_str());
  }
  for (const std::string& line : split(result->out, '\n')) {
    auto fields = parse_scontrol_line(line);
    if (fields.count("JobId") && fields["JobId"] == job_id) return JobInfo{.id = job_id, .fields = std::move(fields)};
  }
  // An array or het job prints several records; take the first.
  for (const std::string& line : split(result->out, '\n'))
    if (!trim(line).empty()) return JobInfo{.id = job_id, .fields = parse_scontrol_line(line)};
  return error(StatusCode::kNotFound, "Slurm does not know job %s", job_id.c_str());
}

Expected<std::vector<std::string>> SlurmClient::hostnames(const std::string& host_list) const {
  PONDER_ASSIGN_OR_RETURN(std::string out, run({"scontrol", "show", "hostnames", host_list}));
  std::vector<std::string> names;
  for (const std::string& line : split(out, '\n'))
    if (!trim(line).empty()) names.emplace_back(trim(line));
  if (names.empty())
    return error(StatusCode::kInternal, "scontrol show hostnames '%s' printed no names", host_list.c_str());
  return names;
}

Expected<std::vector<JobInfo>> SlurmClient::my_jobs() const {
  const passwd* pw = getpwuid(getuid());
  const std::string user = pw ? pw->pw_name : std::to_string(getuid());
  PONDER_ASSIGN_OR_RETURN(std::string out, run({"squeue", "-h", "-u", user, "-o", "%i|%j|%T|%M|%D|%R|%k"}));
  std::vector<JobInfo> jobs;
  for (const std::string& line : split(out, '\n')) {
    auto parts = split(line, '|');
    if (parts.size() < 7) continue;
    std::string comment = parts[6];
    for (size_t i = 7; i < parts.size(); ++i) comment += "|" + parts[i];
    if (trim(comment) != kJobComment) continue;
    JobInfo j{.id = std::string(trim(parts[0]))};
    j.fields = {{"JobName", parts[1]}, {"JobState", parts[2]}, {"RunTime", parts[3]},
                {"NumNodes", parts[4]}, {"Reason", parts[5]}, {"Comment", comment}};
    jobs.push_back(std::move(j));
  }
  return jobs;
}

Status SlurmClient::cancel(const std::string& job_id, const std::string& signal, bool batch_only) const {
  std::vector<std::string> argv = {"scancel"};
  if (!signal.empty()) argv.push_back("--signal=" + signal);
  if (batch_only) argv.push_back("--batch");
  argv.push_back(job_id);
  return status_of(run(argv));
}

Status SlurmClient::requeue(const std::string& job_id) const {
  return status_of(run({"scontrol", "requeue", job_id}));
}

}  // namespace ponder::slurm
