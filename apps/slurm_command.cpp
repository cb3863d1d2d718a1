#include "apps/slurm_command.h"

#include <pwd.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "apps/deploy_config.h"
#include "apps/generate_options.h"
#include "apps/slurm_launch.h"
#include "experiments/http_client.h"
#include "common/check.h"
#include "common/strings.h"
#include "slurm/endpoint_file.h"
#include "slurm/job_script.h"
#include "slurm/slurm_client.h"

namespace ponder::apps {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

const std::vector<std::string> kSlurmCommands = {"sbatch", "squeue", "scontrol", "scancel"};

// ---- where a job's files are ---------------------------------------------------------------

// Every submit is recorded (job id → job dir) so that a job Slurm has forgotten (MinJobAge) can
// still be looked up: $PONDER_STATE_DIR, else $XDG_STATE_HOME/ponder, else ~/.local/state/ponder.
std::string registry_path() {
  if (const char* d = std::getenv("PONDER_STATE_DIR"); d && *d) return std::string(d) + "/slurm-jobs.jsonl";
  if (const char* d = std::getenv("XDG_STATE_HOME"); d && *d) return std::string(d) + "/ponder/slurm-jobs.jsonl";
  const char* home = std::getenv("HOME");
  if (!home || !*home) {
    const passwd* pw = getpwuid(getuid());
    home = pw ? pw->pw_dir : "/tmp";
  }
  return std::string(home) + "/.local/state/ponder/slurm-jobs.jsonl";
}

void record_submit(const std::string& job_id, const std::string& output_dir, const std::string& deploy) {
  const std::string path = registry_path();
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  std::ofstream out(path, std::ios::app);
  out << nlohmann::json({{"job_id", job_id},
                         {"output_dir", output_dir},
                         {"deploy", deploy},
                         {"submitted_unix", static_cast<int64_t>(std::time(nullptr))}})
             .dump()
      << "\n";
}

struct JobFiles {
  std::string id;
  std::string output_dir;
  std::string dir;  // <output_dir>/<id>
  std::optional<slurm::JobInfo> info;  // when Slurm still knows the job
  std::string batch_log() const { return slurm::batch_log_path(output_dir, id); }
};

// The job's files: from Slurm's record of it (its StdOut lies in the output dir), else from the
// registry. Errors for a job that is not ponder's.
Expected<JobFiles> find_job(const slurm::SlurmClient& client, const std::string& id) {
  if (!slurm::valid_job_id(id)) return error(StatusCode::kInvalidArgument, "'%s' is not a Slurm job id", id.c_str());
  JobFiles f{.id = id};
  auto info = client.job(id);
  if (info) {
    if (info->get("Comment") != slurm::kJobComment)
      return error(StatusCode::kInvalidArgument,
                   "job %s is not a ponder deployment (its comment is '%s', ponder's jobs carry '%s')", id.c_str(),
                   info->get("Comment").c_str(), slurm::kJobComment);
    f.output_dir = fs::path(info->get("StdOut")).parent_path().string();
    f.info = std::move(*info);
  } else if (info.error().code() != StatusCode::kNotFound) {
    return tl::unexpected(info.error());
  } else {
    std::ifstream in(registry_path());
    std::string line;
    while (std::getline(in, line)) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_object() && j.value("job_id", "") == id) f.output_dir = j.value("output_dir", "");
    }
    if (f.output_dir.empty())
      return error(StatusCode::kNotFound, "%s, and no ponder slurm submit of this user recorded it (%s)",
                   info.error().message().c_str(), registry_path().c_str());
  }
  f.dir = slurm::job_dir(f.output_dir, id);
  return f;
}

// ---- what state a deployment is in --------------------------------------------------------

struct Deployment {
  std::string state;   // PENDING, STARTING, READY, DEGRADED, DRAINING, REQUEUED, STOPPED, FAILED, ENDED
  std::string detail;  // Slurm's reason, or ponder's
  std::string slurm_state;
  std::optional<slurm::EndpointRecord> endpoint;
};

Deployment deployment_of(const JobFiles& f) {
  Deployment d;
  if (auto e = slurm::read_endpoint(f.dir)) d.endpoint = *e;
  if (!f.info) {
    d.slurm_state = "UNKNOWN";
    d.state = d.endpoint ? d.endpoint->state : "ENDED";
    d.detail = "Slurm no longer knows the job; this is the last state it published";
    if (d.endpoint && !d.endpoint->reason.empty()) d.detail += " (" + d.endpoint->reason + ")";
    return d;
  }
  d.slurm_state = f.info->state();
  const int restarts = std::atoi(f.info->get("Restarts").c_str());
  const bool current = d.endpoint && d.endpoint->restart_count == restarts;
  if (d.slurm_state == "PENDING" || d.slurm_state == "REQUEUED" || d.slurm_state == "REQUEUE_HOLD" ||
      d.slurm_state == "CONFIGURING" || d.slurm_state == "SUSPENDED") {
    d.state = "PENDING";
    d.detail = d.slurm_state == "PENDING" ? "Slurm: " + f.info->get("Reason") : "Slurm: " + d.slurm_state;
  } else if (!f.info->active()) {
    if (current && d.endpoint->state == "FAILED") {
      d.state = "FAILED";
      d.detail = d.endpoint->reason;
    } else {
      d.state = "ENDED";
      d.detail = "Slurm: " + d.slurm_state + (current ? ", ponder: " + d.endpoint->state : "");
      if (current && !d.endpoint->reason.empty()) d.detail += " (" + d.endpoint->reason + ")";
    }
  } else if (current) {
    d.state = d.endpoint->state;
    d.detail = d.endpoint->reason;
  } else {
    d.state = "STARTING";
    d.detail = "the coordinator has not published this run yet";
  }
  return d;
}

// GET http[s]://address:port/health, answering its status (0 when it cannot connect) within
// `timeout`. An https job's certificate is not verified here: the probe sends nothing secret and
// reads only the status, and the CA is the client's business (the sweep's target.ca_file).
int health_status(const std::string& address, int port, bool tls, std::chrono::milliseconds timeout) {
  const experiments::BaseUrl base{.host = address, .port = std::to_string(port), .path = "",
                                  .text = strformat("%s://%s:%d", tls ? "https" : "http", address.c_str(), port),
                                  .tls = tls, .verify = false};
  auto reply = experiments::http_request_blocking(base, "", "GET", "/health", "", timeout);
  return reply ? reply->status : 0;
}

nlohmann::json to_json(const JobFiles& f, const Deployment& d) {
  nlohmann::json j = {{"job_id", f.id},       {"state", d.state},         {"detail", d.detail},
                      {"slurm_state", d.slurm_state}, {"job_dir", f.dir}, {"batch_log", f.batch_log()}};
  if (f.info) {
    j["name"] = f.info->get("JobName");
    j["nodes"] = f.info->get("NodeList");
    j["run_time"] = f.info->get("RunTime");
    j["time_limit"] = f.info->get("TimeLimit");
    j["restarts"] = std::atoi(f.info->get("Restarts").c_str());
  }
  if (d.endpoint) {
    j["url"] = d.endpoint->url;
    j["api_key_file"] = d.endpoint->api_key_file;
    j["replicas"] = d.endpoint->replicas;
    j["healthy_replicas"] = d.endpoint->healthy_replicas;
    j["coordinator"] = d.endpoint->host;
  }
  return j;
}

// ---- the subcommands ----------------------------------------------------------------------

Status submit(const std::string& path, bool dry_run, const std::string& output_dir) {
  // A dry run works where the model is not (a laptop, a login node without the shared mount):
  // what a submit would refuse about the model is a note then.
  PONDER_ASSIGN_OR_RETURN(DeployConfig d, load_deploy_config(path, /*for_submit=*/true, /*check_model=*/!dry_run));
  if (!output_dir.empty()) d.slurm.output_dir = fs::absolute(output_dir).lexically_normal().string();
  if (dry_run)
    if (auto full = load_deploy_config(path, true, true); !full)
      std::fprintf(stderr, "ponder slurm submit: note: a submit would refuse this: %s\n",
                   full.error().message().c_str());
  // An inline api_key goes to a 0600 file, never into the script.
  PONDER_ASSIGN_OR_RETURN(const MovedApiKey moved_key, move_api_key_out(d, dry_run));
  if (dry_run && !moved_key.file.empty())
    std::fprintf(stderr, "ponder slurm submit: note: a submit writes api_key to %s (mode 0600), not into the script\n",
                 moved_key.file.c_str());
  slurm::JobScriptInput input{.slurm = d.slurm, .layout = d.layout, .deploy_yaml = emit_deploy_yaml(d),
                              .source = fs::absolute(path).lexically_normal().string()};
  PONDER_RETURN_IF_ERROR(slurm::check_script_input(input).with_context(path));
  const std::string script = slurm::render_sbatch_script(input);
  if (dry_run) {
    std::printf("# ponder slurm submit --dry-run: nothing is submitted.\n");
    std::printf("# ---- layout\n");
    for (const std::string& line : split(d.layout.describe({}), '\n'))
      if (!line.empty()) std::printf("#   %s\n", line.c_str());
    std::printf("# ---- the replicas' srun steps, which the coordinator runs inside the allocation\n");
    const std::string dir = slurm::job_dir(d.slurm.output_dir, "$SLURM_JOB_ID");
    for (int r = 0; r < d.layout.shape.replicas; ++r) {
      const auto words = slurm::replica_step_command(d.slurm, d.layout, r, "$SLURM_JOB_ID",
                                                     slurm::task_file_path(dir, r, 0));
      std::printf("#   %s\n", join(words, " ").c_str());
    }
    std::printf("# ---- sbatch script (saved as %s/ponder-<job id>.sbatch on submit)\n", d.slurm.output_dir.c_str());
    std::fputs(script.c_str(), stdout);
    if (Status st = slurm::SlurmClient::require(kSlurmCommands); !st.ok())
      std::fprintf(stderr, "ponder slurm submit: note: %s\n", st.message().c_str());
    return {};
  }
  PONDER_RETURN_IF_ERROR(slurm::SlurmClient::require(kSlurmCommands));
  std::error_code ec;
  fs::create_directories(d.slurm.output_dir, ec);
  if (ec)
    return error(StatusCode::kUnavailable, "cannot create output_dir %s: %s", d.slurm.output_dir.c_str(),
                 ec.message().c_str());
  std::string tmp = d.slurm.output_dir + "/submit-XXXXXX";
  int fd = mkstemp(tmp.data());
  if (fd < 0) return error(StatusCode::kUnavailable, "cannot write a script into %s", d.slurm.output_dir.c_str());
  const bool written = write(fd, script.data(), script.size()) == static_cast<ssize_t>(script.size());
  close(fd);
  if (!written) return error(StatusCode::kUnavailable, "cannot write %s", tmp.c_str());
  if (Status st = write_api_key_file(moved_key); !st.ok()) {
    fs::remove(tmp, ec);
    return st;
  }
  slurm::SlurmClient client;
  auto id = client.submit(tmp);
  if (!id) {
    fs::remove(tmp, ec);
    if (!moved_key.file.empty()) fs::remove(moved_key.file, ec);
    return id.error();
  }
  const std::string kept = d.slurm.output_dir + "/ponder-" + *id + ".sbatch";
  fs::rename(tmp, kept, ec);
  record_submit(*id, d.slurm.output_dir, input.source);
  std::printf("%s\n", id->c_str());
  std::fprintf(stderr,
               "ponder slurm: submitted job %s (%s); script %s\n"
               "  ponder slurm status %s | endpoint %s --wait 600 | logs %s [--rank R] | cancel %s\n",
               id->c_str(), d.layout.describe({}).substr(0, d.layout.describe({}).find('\n')).c_str(), kept.c_str(),
               id->c_str(), id->c_str(), id->c_str(), id->c_str());
  return {};
}

Status status(const std::string& id, bool json) {
  slurm::SlurmClient client;
  PONDER_RETURN_IF_ERROR(slurm::SlurmClient::require({"scontrol"}));
  PONDER_ASSIGN_OR_RETURN(JobFiles f, find_job(client, id));
  const Deployment d = deployment_of(f);
  if (json) {
    std::printf("%s\n", to_json(f, d).dump(2).c_str());
    return {};
  }
  if (f.info) {
    std::printf("job %s (%s): Slurm %s", id.c_str(), f.info->get("JobName").c_str(), d.slurm_state.c_str());
    if (d.slurm_state == "RUNNING")
      std::printf(" for %s (limit %s) on %s", f.info->get("RunTime").c_str(), f.info->get("TimeLimit").c_str(),
                  f.info->get("NodeList").c_str());
    std::printf(", run %s\n", f.info->get("Restarts").c_str());
  } else {
    std::printf("job %s: Slurm no longer knows it\n", id.c_str());
  }
  std::printf("ponder: %s%s%s\n", d.state.c_str(), d.detail.empty() ? "" : " - ", d.detail.c_str());
  if (d.endpoint && (d.state == "READY" || d.state == "DEGRADED" || d.state == "DRAINING")) {
    std::printf("replicas: %d of %d healthy\n", d.endpoint->healthy_replicas, d.endpoint->replicas);
    std::printf("url: %s\n", d.endpoint->url.c_str());
    if (!d.endpoint->api_key_file.empty()) std::printf("api key file: %s\n", d.endpoint->api_key_file.c_str());
  }
  std::printf("logs: %s (coordinator), %s/rank-%s_<R>.run<N>.log (ranks), %s/replica<r>.run<N>.log (srun)\n",
              f.batch_log().c_str(), f.dir.c_str(), id.c_str(), f.dir.c_str());
  return {};
}

Status endpoint(const std::string& id, double wait_s, bool json) {
  slurm::SlurmClient client;
  PONDER_RETURN_IF_ERROR(slurm::SlurmClient::require({"scontrol"}));
  const auto until = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(wait_s * 1000));
  std::string last;
  while (true) {
    PONDER_ASSIGN_OR_RETURN(JobFiles f, find_job(client, id));
    const Deployment d = deployment_of(f);
    if (d.state == "FAILED")
      return error(StatusCode::kUnavailable, "job %s FAILED: %s", id.c_str(), d.detail.c_str());
    if (d.state == "ENDED" || (!f.info && d.state != "READY"))
      return error(StatusCode::kUnavailable, "job %s has ended (%s)", id.c_str(), d.detail.c_str());
    std::string note = d.detail.empty() ? d.state : strformat("%s (%s)", d.state.c_str(), d.detail.c_str());
    if ((d.state == "READY" || d.state == "DEGRADED") && d.endpoint) {
      const int code = health_status(d.endpoint->address, d.endpoint->port, d.endpoint->url.starts_with("https://"),
                                     std::chrono::milliseconds(3000));
      if (code == 200) {
        if (json) {
          std::printf("%s\n", to_json(f, d).dump(2).c_str());
        } else {
          std::printf("%s\n", d.endpoint->url.c_str());
          if (!d.endpoint->api_key_file.empty())
            std::fprintf(stderr, "api key file: %s (send 'Authorization: Bearer <its contents>')\n",
                         d.endpoint->api_key_file.c_str());
        }
        return {};
      }
      note = d.state + strformat(", but /health answers %d", code);
    }
    if (Clock::now() >= until)
      return error(StatusCode::kUnavailable, "job %s is not serving yet: %s%s", id.c_str(), note.c_str(),
                   wait_s > 0 ? "" : " (--wait SECONDS waits for it)");
    if (note != last) {
      std::fprintf(stderr, "ponder slurm endpoint: job %s: %s\n", id.c_str(), note.c_str());
      last = note;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

// The newest run's log of rank `rank`.
std::string rank_log(const JobFiles& f, int rank, int run) {
  if (run >= 0) return slurm::rank_log_path(f.dir, f.id, rank, run);
  std::string newest = slurm::rank_log_path(f.dir, f.id, rank, 0);
  for (int r = 1; r < 1000; ++r) {
    const std::string p = slurm::rank_log_path(f.dir, f.id, rank, r);
    if (!fs::exists(p)) break;
    newest = p;
  }
  return newest;
}

Status logs(const std::string& id, int rank, int run, bool follow) {
  slurm::SlurmClient client;
  PONDER_ASSIGN_OR_RETURN(JobFiles f, find_job(client, id));
  const std::string path = rank < 0 ? f.batch_log() : rank_log(f, rank, run);
  std::ifstream in;
  auto open = [&] {
    if (!in.is_open()) in.open(path, std::ios::binary);
    return in.is_open();
  };
  if (!follow && !open())
    return error(StatusCode::kNotFound, "%s does not exist%s", path.c_str(),
                 rank >= 0 ? " (is the rank in this deployment, and has the job started?)" : " (has the job started?)");
  auto drain = [&] {
    if (!open()) return;
    char buf[1 << 14];
    while (in.read(buf, sizeof(buf)) || in.gcount() > 0) std::fwrite(buf, 1, static_cast<size_t>(in.gcount()), stdout);
    in.clear();  // at EOF: keep the position for more
    std::fflush(stdout);
  };
  drain();
  if (!follow) return {};
  // Until the job ends (checked every 2 s), then what was written last.
  auto checked = Clock::now();
  while (true) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    drain();
    if (Clock::now() - checked > std::chrono::seconds(2)) {
      checked = Clock::now();
      auto info = client.job(id);
      if (!info || !info->active()) break;
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  drain();
  return {};
}

Status cancel(const std::string& id, double timeout_s) {
  slurm::SlurmClient client;
  PONDER_RETURN_IF_ERROR(slurm::SlurmClient::require({"scontrol", "scancel"}));
  PONDER_ASSIGN_OR_RETURN(JobFiles f, find_job(client, id));
  if (!f.info || !f.info->active()) {
    std::printf("job %s has already ended (%s)\n", id.c_str(), f.info ? f.info->state().c_str() : "Slurm forgot it");
    return {};
  }
  const Deployment d = deployment_of(f);
  // The job's own copy of its deployment says how long its drain may take.
  int64_t drain_s = 30;
  try {
    YAML::Node copy = YAML::LoadFile(f.dir + "/deploy.yaml");
    if (copy["drain_timeout_s"]) drain_s = copy["drain_timeout_s"].as<int64_t>();
  } catch (const YAML::Exception&) {
  }
  const bool serving = d.state == "READY" || d.state == "DEGRADED";
  if (serving) {
    std::fprintf(stderr, "ponder slurm cancel: job %s: draining (in-flight requests get up to %lld s)\n", id.c_str(),
                 (long long)drain_s);
    PONDER_RETURN_IF_ERROR(client.cancel(id, "TERM", /*batch_only=*/true));
  } else {
    PONDER_RETURN_IF_ERROR(client.cancel(id));
  }
  auto wait_end = [&](std::chrono::milliseconds budget) -> std::string {
    const auto until = Clock::now() + budget;
    while (Clock::now() < until) {
      auto info = client.job(id);
      if (!info) return "gone";
      if (!info->active()) return info->state();
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return "";
  };
  const double budget = timeout_s > 0 ? timeout_s : static_cast<double>(drain_s + 30);
  std::string state = wait_end(std::chrono::milliseconds(static_cast<int64_t>(budget * 1000)));
  if (state.empty() && serving) {
    std::fprintf(stderr, "ponder slurm cancel: job %s did not end after its drain: scancel\n", id.c_str());
    PONDER_RETURN_IF_ERROR(client.cancel(id));
    state = wait_end(std::chrono::seconds(60));
  }
  if (state.empty()) return error(StatusCode::kTimeout, "job %s is still active after scancel", id.c_str());
  std::printf("job %s: %s\n", id.c_str(), state.c_str());
  return {};
}

Status list(bool json) {
  slurm::SlurmClient client;
  PONDER_RETURN_IF_ERROR(slurm::SlurmClient::require({"squeue", "scontrol"}));
  PONDER_ASSIGN_OR_RETURN(auto jobs, client.my_jobs());
  nlohmann::json all = nlohmann::json::array();
  if (!json) std::printf("%-10s %-16s %-11s %-10s %s\n", "JOBID", "NAME", "SLURM", "PONDER", "URL / DETAIL");
  for (const auto& j : jobs) {
    auto f = find_job(client, j.id);
    if (!f) continue;  // ended between squeue and scontrol
    const Deployment d = deployment_of(*f);
    if (json) {
      all.push_back(to_json(*f, d));
      continue;
    }
    const std::string where = d.endpoint && !d.endpoint->url.empty() && d.state != "STARTING" ? d.endpoint->url : d.detail;
    std::printf("%-10s %-16s %-11s %-10s %s\n", j.id.c_str(), j.get("JobName").c_str(), d.slurm_state.c_str(),
                d.state.c_str(), where.c_str());
  }
  if (json) std::printf("%s\n", all.dump(2).c_str());
  return {};
}

}  // namespace

int run_slurm(int argc, char** argv) {
  CLI::App app{"ponder slurm: deploy ponder serve on a Slurm cluster (docs/slurm.md)", "ponder slurm"};
  app.require_subcommand(1);
  std::string deploy, job, file, output_dir;
  bool dry_run = false, json = false, follow = false;
  double wait_s = 0, timeout_s = 0;
  int rank = -1, run = -1;

  auto* sub = app.add_subcommand("submit", "render the sbatch script of DEPLOY.yaml and submit it; prints the job id");
  sub->add_option("deploy", deploy, "deploy.yaml: ponder serve keys plus a slurm: section")->required();
  sub->add_flag("--dry-run", dry_run, "print the layout, the replicas' srun steps and the script; submit nothing");
  sub->add_option("--output-dir", output_dir, "overrides slurm.output_dir");
  sub->footer(std::string("slurm: keys:\n") + slurm::kSlurmOptionKeys + "\nponder serve keys:\n" + kServeConfigKeys);
  auto* st = app.add_subcommand("status", "Slurm's state of JOB and ponder's (PENDING, STARTING, READY, DEGRADED, …)");
  st->add_option("job", job, "job id")->required();
  st->add_flag("--json", json, "one JSON object");
  auto* ep = app.add_subcommand("endpoint", "print JOB's base URL once its /health answers 200");
  ep->add_option("job", job, "job id")->required();
  ep->add_option("--wait", wait_s, "wait up to this many seconds for it (default 0: ask once)")
      ->check(CLI::Range(0.0, 7.0 * 86400));
  ep->add_flag("--json", json, "URL, API key file and state as JSON");
  auto* lg = app.add_subcommand("logs", "print JOB's coordinator log, or a rank's");
  lg->add_option("job", job, "job id")->required();
  lg->add_option("--rank", rank, "this rank's log instead (SLURM_PROCID)")->check(CLI::Range(0, 1 << 20));
  lg->add_option("--run", run, "the run (SLURM_RESTART_COUNT) whose rank log to print (default: the newest)")
      ->check(CLI::Range(0, 1000));
  lg->add_flag("--follow,-f", follow, "keep printing what is appended until the job ends");
  auto* cn = app.add_subcommand("cancel", "drain JOB (in-flight requests finish), then end it");
  cn->add_option("job", job, "job id")->required();
  cn->add_option("--timeout", timeout_s, "seconds to wait for the drain before scancel (default: drain_timeout_s + 30)")
      ->check(CLI::Range(0.0, 86400.0));
  auto* ls = app.add_subcommand("list", "this user's ponder jobs with their state and URL");
  ls->add_flag("--json", json, "a JSON array");
  auto* launch = app.add_subcommand("launch", "(inside the job script) run the coordinator of a deployment");
  launch->add_option("deploy", file, "the job's resolved deploy.yaml")->required();
  launch->group("");  // internal: not listed in --help
  auto* task = app.add_subcommand("task", "(inside the ranks' srun step) run one rank");
  task->add_option("file", file, "the job's task file")->required();
  task->group("");

  std::vector<std::string> args;
  for (int i = argc - 1; i >= 0; --i) args.emplace_back(argv[i]);  // CLI11 takes them reversed
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints the help, or the error and "Run with --help"
    return code == 0 ? 0 : 2;
  }
  Status result;
  if (*sub) result = submit(deploy, dry_run, output_dir);
  if (*st) result = status(job, json);
  if (*ep) result = endpoint(job, wait_s, json);
  if (*lg) result = logs(job, rank, run, follow);
  if (*cn) result = cancel(job, timeout_s);
  if (*ls) result = list(json);
  if (*launch) return run_slurm_launch(file);
  if (*task) return run_slurm_task(file);
  return result.ok() ? 0 : report_failure("slurm", result);
}

}  // namespace ponder::apps
