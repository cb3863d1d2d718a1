#include "slurm/job_script.h"

#include "common/strings.h"
#include "slurm/slurm_client.h"

namespace ponder::slurm {

namespace {

constexpr const char* kDeployMarker = "PONDER_DEPLOY_YAML";

bool has_line_break(const std::string& s) { return s.find_first_of("\r\n") != std::string::npos; }

std::string gpu_request(const SlurmOptions& s) {
  const std::string count =
      s.gpu_type.empty() ? std::to_string(s.gpus_per_node) : strformat("%s:%d", s.gpu_type.c_str(), s.gpus_per_node);
  return s.gpu_request == GpuRequest::kGres ? "--gres=gpu:" + count : "--gpus-per-node=" + count;
}

}  // namespace

std::string shell_quote(const std::string& word) {
  bool plain = !word.empty();
  for (char c : word)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || std::string_view("@%+=:,./-_").find(c) != std::string_view::npos))
      plain = false;
  if (plain) return word;
  std::string out = "'";
  for (char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string job_dir(const std::string& output_dir, const std::string& job_id) {
  return output_dir + "/" + job_id;
}

std::string rank_log_path(const std::string& dir, const std::string& job_id, int rank, int restart_count) {
  return strformat("%s/rank-%s_%d.run%d.log", dir.c_str(), job_id.c_str(), rank, restart_count);
}

std::string replica_step_log_path(const std::string& dir, int replica, int restart_count) {
  return strformat("%s/replica%d.run%d.log", dir.c_str(), replica, restart_count);
}

std::string task_file_path(const std::string& dir, int replica, int restart_count) {
  return strformat("%s/task.run%d.replica%d.json", dir.c_str(), restart_count, replica);
}

std::string batch_log_path(const std::string& output_dir, const std::string& job_id) {
  return output_dir + "/ponder-" + job_id + ".log";
}

Status check_script_input(const JobScriptInput& in) {
  const SlurmOptions& s = in.slurm;
  for (const std::string* v : {&s.partition, &s.account, &s.qos, &s.time, &s.constraint, &s.job_name, &s.mem,
                               &s.gpu_type, &s.container_image, &s.container_workdir, &s.ponder, &s.interface})
    if (has_line_break(*v))
      return error(StatusCode::kInvalidArgument, "a Slurm setting contains a line break: '%s'", v->c_str());
  for (const auto& list : {s.extra_sbatch_args, s.extra_srun_args, s.container_mounts})
    for (const std::string& a : list)
      if (has_line_break(a) || trim(a).empty())
        return error(StatusCode::kInvalidArgument, "extra arguments and mounts must be non-empty single lines, got '%s'",
                     a.c_str());
  for (const std::string& a : s.extra_sbatch_args)
    if (a.rfind("-", 0) != 0)
      return error(StatusCode::kInvalidArgument, "'extra_sbatch_args' entries are sbatch options (\"--x=y\"), got '%s'",
                   a.c_str());
  if (s.output_dir.find_first_of(" \t\r\n'\"$`\\%") != std::string::npos)
    return error(StatusCode::kInvalidArgument,
                 "'output_dir' %s contains a space, quote, '$', '%%' or backslash: sbatch cannot take it as --output",
                 s.output_dir.c_str());
  for (const auto& [name, value] : s.env)
    if (has_line_break(value))
      return error(StatusCode::kInvalidArgument, "'env' %s contains a line break", name.c_str());
  for (const std::string& line : split(in.deploy_yaml, '\n'))
    if (line == kDeployMarker)
      return error(StatusCode::kInvalidArgument, "the deployment contains the line %s, which ends the script's copy of it",
                   kDeployMarker);
  return {};
}

std::string render_sbatch_script(const JobScriptInput& in) {
  const SlurmOptions& s = in.slurm;
  const JobLayout& l = in.layout;
  std::string out = "#!/bin/bash\n";
  out += "# A ponder deployment, rendered by `ponder slurm submit` from " + in.source + ".\n";
  out += "# The batch script becomes the coordinator on the first node (`ponder slurm launch`); it starts\n";
  out += "# each replica's ranks as an `srun --mpi=pmix` step of its own and writes\n";
  out += "# " + s.output_dir + "/$SLURM_JOB_ID/endpoint.json once every replica has answered a generation.\n";
  for (const std::string& line : split(l.describe({}), '\n'))
    if (!line.empty()) out += "#   " + line + "\n";
  auto sb = [&](const std::string& option) { out += "#SBATCH " + option + "\n"; };
  sb("--job-name=" + s.job_name);
  sb("--nodes=" + std::to_string(l.nodes));
  sb("--ntasks-per-node=" + std::to_string(l.tasks_per_node));
  sb("--cpus-per-task=" + std::to_string(s.cpus_per_task));
  if (s.gpus_per_node > 0) sb(gpu_request(s));
  if (!s.mem.empty()) sb("--mem=" + s.mem);
  if (!s.partition.empty()) sb("--partition=" + s.partition);
  if (!s.account.empty()) sb("--account=" + s.account);
  if (!s.qos.empty()) sb("--qos=" + s.qos);
  if (!s.time.empty()) sb("--time=" + s.time);
  if (!s.constraint.empty()) sb("--constraint=" + s.constraint);
  if (s.exclusive) sb("--exclusive");
  if (s.segment > 0) sb("--segment=" + std::to_string(s.segment));
  sb(s.requeue ? "--requeue" : "--no-requeue");
  if (s.signal_grace_s > 0) sb("--signal=B:USR1@" + std::to_string(s.signal_grace_s));
  sb("--output=" + batch_log_path(s.output_dir, "%j"));
  sb("--open-mode=append");
  sb(std::string("--comment=") + kJobComment);
  for (const std::string& a : s.extra_sbatch_args) sb(a);
  out += "\nset -euo pipefail\n";
  out += "job_dir=" + job_dir(s.output_dir, "${SLURM_JOB_ID}") + "\n";
  out += "mkdir -p \"$job_dir\"\n";
  out += "echo \"ponder: job ${SLURM_JOB_ID} run ${SLURM_RESTART_COUNT:-0} starts on $(hostname) at $(date -u +%FT%TZ)\"\n";
  for (const auto& [name, value] : s.env) out += "export " + name + "=" + shell_quote(value) + "\n";
  out += std::string("cat > \"$job_dir/deploy.yaml\" <<'") + kDeployMarker + "'\n";
  out += in.deploy_yaml;
  if (!in.deploy_yaml.empty() && in.deploy_yaml.back() != '\n') out += "\n";
  out += std::string(kDeployMarker) + "\n";
  out += "exec " + shell_quote(s.ponder) + " slurm launch \"$job_dir/deploy.yaml\"\n";
  return out;
}

std::vector<std::string> replica_step_command(const SlurmOptions& s, const JobLayout& l, int replica,
                                              const std::string& job_id, const std::string& task_file) {
  std::vector<std::string> a = {"srun",
                                "--mpi=pmix",
                                "--relative=" + std::to_string(l.first_node(replica)),
                                "--nodes=" + std::to_string(l.nodes_per_replica()),
                                "--ntasks=" + std::to_string(l.ranks_per_replica()),
                                "--ntasks-per-node=" + std::to_string(l.replica_tasks_per_node()),
                                "--cpus-per-task=" + std::to_string(s.cpus_per_task),
                                // Only its share of a node that other replicas use too.
                                "--exact",
                                // A dead rank ends its replica at once; the others keep serving.
                                "--kill-on-bad-exit=1",
                                "--label",
                                "--job-name=" + s.job_name + "-replica" + std::to_string(replica)};
  if (s.gpus_per_node > 0) {
    SlurmOptions share = s;
    share.gpus_per_node = l.replica_tasks_per_node();  // one GPU per rank
    a.push_back(gpu_request(share));
  }
  if (!s.container_image.empty()) {
    a.push_back("--container-image=" + s.container_image);
    a.push_back("--container-name=ponder-" + job_id);
    std::vector<std::string> mounts = s.container_mounts;
    mounts.push_back(s.output_dir + ":" + s.output_dir);
    a.push_back("--container-mounts=" + join(mounts, ","));
    if (!s.container_workdir.empty()) a.push_back("--container-workdir=" + s.container_workdir);
  }
  a.insert(a.end(), s.extra_srun_args.begin(), s.extra_srun_args.end());
  a.insert(a.end(), {s.ponder, "slurm", "task", task_file});
  return a;
}

}  // namespace ponder::slurm
