#include "apps/slurm_launch.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "apps/deploy_config.h"
#include "apps/generate_options.h"
#include "apps/replica_command.h"
#include "apps/replica_link_keys.h"
#include "apps/replica_processes.h"
#include "common/check.h"
#include "common/log.h"
#include "common/strings.h"
#include "coordinator/http/http_server.h"
#include "coordinator/model_text.h"
#include "coordinator/replicas/replica_pool.h"
#include "slurm/endpoint_file.h"
#include "slurm/job_script.h"
#include "slurm/node_address.h"
#include "slurm/slurm_client.h"

namespace ponder::apps {
namespace {

using Clock = std::chrono::steady_clock;

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

// Sends a one-token greedy generation through replica `id` and waits for it: an open port or a
// registration is not readiness, a real step through every rank of the replica is.
Status probe_replica(coordinator::ReplicaPool& pool, const std::string& id, const std::vector<int32_t>& prompt,
                     std::chrono::seconds timeout) {
  worker::EngineRequest request;
  request.prompt = prompt;
  request.max_tokens = 1;
  request.sampling.temperature = 0.0f;
  auto done = std::make_shared<std::promise<std::string>>();
  auto result = done->get_future();
  auto submitted = pool.submit_to(id, std::move(request), [done](const worker::EngineOutput& out) {
    if (!out.finished) return;
    done->set_value(out.finish_reason == "error" ? "error: " + out.error : out.finish_reason);
  });
  if (!submitted) return submitted.error().with_context("replica " + id);
  if (result.wait_for(timeout) != std::future_status::ready)
    return error(StatusCode::kTimeout, "replica %s did not answer a one-token generation within %lld s", id.c_str(),
                 (long long)timeout.count());
  const std::string reason = result.get();
  if (reason != "length" && reason != "stop")
    return error(StatusCode::kUnavailable, "replica %s failed its one-token generation (%s)", id.c_str(),
                 reason.c_str());
  return {};
}

class Launch {
 public:
  Launch(DeployConfig d, std::string job_dir) : d_(std::move(d)), job_dir_(std::move(job_dir)) {}

  Status run() {
    job_id_ = env_or("SLURM_JOB_ID", "");
    if (job_id_.empty())
      return error(StatusCode::kFailedPrecondition,
                   "ponder slurm launch runs inside a Slurm job (the script `ponder slurm submit` renders); "
                   "SLURM_JOB_ID is not set");
    restart_ = std::atoi(env_or("SLURM_RESTART_COUNT", "0").c_str());
    rec_ = {.state = "STARTING", .job_id = job_id_, .restart_count = restart_, .replicas = d_.serve.replicas,
            .coordinator_pid = getpid()};
    Status st = start();
    if (st.code() == StatusCode::kCancelled) {
      // Cancelled (or signalled) while starting: nothing to drain.
      PONDER_LOG(kInfo, "slurm", "%s", st.message().c_str());
      rec_.state = "STOPPED";
      rec_.reason = st.message();
      if (Status w = publish(); !w.ok()) PONDER_LOG(kError, "slurm", "%s", w.message().c_str());
      stop_children(children_, std::chrono::milliseconds(0));
      return {};
    }
    if (!st.ok()) fail(st.message());
    return st;
  }

 private:
  Status start() {
    // Signals are taken by sigwait; every thread started from here on inherits the mask.
    sigemptyset(&signals_);
    for (int s : {SIGINT, SIGTERM, SIGUSR1}) sigaddset(&signals_, s);
    pthread_sigmask(SIG_BLOCK, &signals_, &original_mask_);

    PONDER_ASSIGN_OR_RETURN(nodes_, client_.hostnames(env_or("SLURM_JOB_NODELIST", env_or("SLURM_NODELIST", ""))));
    if (static_cast<int>(nodes_.size()) != d_.layout.nodes)
      return error(StatusCode::kFailedPrecondition, "the allocation has %zu nodes, the deployment %d",
                   nodes_.size(), d_.layout.nodes);
    PONDER_ASSIGN_OR_RETURN(address_, slurm::node_address(d_.slurm.interface));
    rec_.host = address_.host;
    rec_.address = address_.address;
    PONDER_LOG(kInfo, "slurm", "job %s run %d: coordinator on %s, listening on %s (%s)", job_id_.c_str(), restart_,
               address_.host.c_str(), address_.address.c_str(), address_.how.c_str());
    for (const std::string& line : split(d_.layout.describe(nodes_), '\n'))
      if (!line.empty()) PONDER_LOG(kInfo, "slurm", "%s", line.c_str());
    PONDER_RETURN_IF_ERROR(publish());

    PONDER_ASSIGN_OR_RETURN(text_, load_served_model_text(d_.serve));
    // This run's CURVE keys in the job directory (0700; the ranks read their files from the shared
    // filesystem), unless the deployment names curve_keys_dir.
    PONDER_ASSIGN_OR_RETURN(link_keys_, ReplicaLinkKeys::prepare(d_.serve, strformat("%s/curve.run%d",
                                                                                     job_dir_.c_str(), restart_)));
    PONDER_ASSIGN_OR_RETURN(pool_, coordinator::ReplicaPool::start(
                                       {.bind = "tcp://" + address_.address + ":*",
                                        .model = d_.serve.served_model_name,
                                        .heartbeat = std::chrono::milliseconds(d_.serve.heartbeat_ms),
                                        .heartbeat_timeout = std::chrono::milliseconds(d_.serve.heartbeat_timeout_ms),
                                        .max_queued = d_.serve.max_queued,
                                        .think_start = text_->think_start,
                                        .think_end = text_->think_end,
                                        .curve = link_keys_->server()}));
    PONDER_RETURN_IF_ERROR(start_ranks());
    PONDER_RETURN_IF_ERROR(wait_for_registration(*pool_, d_.serve.replicas, children_,
                                                 std::chrono::seconds(d_.serve.startup_timeout_s), signals_,
                                                 [this] { return missing_replicas(); }));
    std::vector<int32_t> prompt = text_->tokenizer.encode("ping");
    if (prompt.empty()) prompt = {0};
    for (const auto& info : pool_->replicas()) {
      PONDER_RETURN_IF_ERROR(probe_replica(*pool_, info.id, prompt, std::chrono::seconds(d_.serve.startup_timeout_s)));
      PONDER_LOG(kInfo, "slurm", "%s (%s) answered a one-token generation", info.id.c_str(), info.name.c_str());
    }
    PONDER_RETURN_IF_ERROR(start_http());
    rec_.state = "READY";
    rec_.healthy_replicas = d_.serve.replicas;
    PONDER_RETURN_IF_ERROR(publish());
    std::printf("ponder slurm: job %s is READY at %s (%d replica%s of tp%d pp%d)\n", job_id_.c_str(),
                rec_.url.c_str(), d_.serve.replicas, d_.serve.replicas == 1 ? "" : "s", d_.serve.tp, d_.serve.pp);
    std::fflush(stdout);
    return watch();
  }

  // Writes each replica's task file and starts its srun step.
  Status start_ranks() {
    const int threads = d_.serve.threads > 0 ? d_.serve.threads : d_.slurm.cpus_per_task;
    nlohmann::json env = nlohmann::json::object();
    if (!d_.slurm.interface.empty()) {
      // MPI and NCCL between the ranks of a replica go over the same network as ponder's own.
      env["OMPI_MCA_btl_tcp_if_include"] = d_.slurm.interface;
      env["OMPI_MCA_oob_tcp_if_include"] = d_.slurm.interface;
      if (!std::getenv("NCCL_SOCKET_IFNAME")) env["NCCL_SOCKET_IFNAME"] = d_.slurm.interface;
    }
    if (d_.layout.nodes_per_replica() == 1 && !std::getenv("OMPI_MCA_btl")) {
      // Every replica inside one node: its ranks talk over shared memory, and Open MPI's TCP
      // transport, which would listen on every interface, stays off.
      env["OMPI_MCA_btl"] = "self,vader";
      env["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none";
    }
    for (int r = 0; r < d_.serve.replicas; ++r) {
      auto args = replica_args(d_.serve, pool_->endpoint(), threads);
      args.insert(args.end(), {"--replica-index", std::to_string(r)});
      const std::vector<std::string> curve = link_keys_->replica_args(r);  // key files, never keys
      args.insert(args.end(), curve.begin(), curve.end());
      nlohmann::json task = {{"job_id", job_id_},
                             {"restart_count", restart_},
                             {"replica", r},
                             {"first_rank", d_.layout.first_rank(r)},
                             {"job_dir", job_dir_},
                             {"args", args},
                             {"env", env}};
      const std::string task_file = slurm::task_file_path(job_dir_, r, restart_);
      {
        std::ofstream out(task_file);
        out << task.dump(2) << "\n";
        if (!out) return error(StatusCode::kUnavailable, "cannot write %s", task_file.c_str());
      }
      const auto argv = slurm::replica_step_command(d_.slurm, d_.layout, r, job_id_, task_file);
      std::vector<std::string> quoted;
      for (const auto& w : argv) quoted.push_back(slurm::shell_quote(w));
      PONDER_LOG(kInfo, "slurm", "replica %d: %s", r, join(quoted, " ").c_str());
      PONDER_ASSIGN_OR_RETURN(Child child, spawn(strformat("replica %d's srun step", r), argv, original_mask_,
                                                 slurm::replica_step_log_path(job_dir_, r, restart_)));
      children_.push_back(child);
    }
    return {};
  }

  // For a start-up deadline: which replicas never registered, with their ranks and nodes.
  std::string missing_replicas() const {
    std::vector<bool> seen(d_.serve.replicas, false);
    for (const auto& info : pool_->replicas())
      if (info.replica_index >= 0 && info.replica_index < d_.serve.replicas) seen[info.replica_index] = true;
    std::vector<std::string> missing;
    for (int r = 0; r < d_.serve.replicas; ++r)
      if (!seen[r]) missing.push_back(describe_replica(r));
    return "did not register: " + join(missing, "; ") + " (see their logs: ponder slurm logs " + job_id_ + " --rank R)";
  }

  // What srun said about replica r's ranks ("srun: error: n2: task 1: Killed"), with the task
  // numbers of its step turned into the deployment's ranks.
  std::string step_errors(int r) const {
    std::ifstream in(slurm::replica_step_log_path(job_dir_, r, restart_));
    std::string line;
    std::vector<std::string> errors;
    while (std::getline(in, line)) {
      if (line.rfind("srun: error:", 0) != 0) continue;
      const size_t at = line.find(": task ");
      if (at != std::string::npos) {
        const size_t digits = at + 7;
        size_t end = digits;
        while (end < line.size() && std::isdigit(static_cast<unsigned char>(line[end]))) ++end;
        if (end > digits && end < line.size() && line[end] == ':')
          line = line.substr(0, at) + strformat(": rank %d", d_.layout.first_rank(r) + std::stoi(line.substr(digits, end - digits))) +
                 line.substr(end);
      }
      errors.push_back(line.substr(std::string("srun: error: ").size()));
    }
    return join(errors, "; ");
  }

  std::string describe_replica(int r) const {
    const int first = r * d_.layout.ranks_per_replica();
    const int last = first + d_.layout.ranks_per_replica() - 1;
    std::vector<std::string> on;
    for (int n : d_.layout.nodes_of_replica(r)) on.push_back(nodes_[n]);
    const std::string where = join(on, ",");
    return first == last ? strformat("replica %d (rank %d on %s)", r, first, where.c_str())
                         : strformat("replica %d (ranks %d-%d on %s)", r, first, last, where.c_str());
  }

  Status start_http() {
    // api_key_file's key (the job's copy of a deployment never carries the key itself).
    PONDER_ASSIGN_OR_RETURN(std::string key, serve_api_key(d_.serve));
    const std::string host = d_.serve.host.empty() ? address_.address : d_.serve.host;
    if (key.empty() && d_.serve.api_keys_file.empty() && !coordinator::http::is_loopback_host(host)) {
      PONDER_ASSIGN_OR_RETURN(key, slurm::random_token());
      PONDER_LOG(kInfo, "slurm", "no api_key configured: generated one for this job");
    }
    if (!key.empty()) {
      rec_.api_key_file = job_dir_ + "/api_key";
      PONDER_RETURN_IF_ERROR(write_private_file(rec_.api_key_file, key + "\n"));
    }
    PONDER_ASSIGN_OR_RETURN(server_, coordinator::http::HttpServer::start(
                                         {.host = host,
                                          .port = static_cast<uint16_t>(d_.serve.port),
                                          .max_body_bytes = d_.serve.max_body_bytes,
                                          .max_n = static_cast<int32_t>(d_.serve.max_n),
                                          .api_key = key,
                                          .api_keys_file = d_.serve.api_keys_file,
                                          .audit_log = d_.serve.audit_log,
                                          .audit_log_text = d_.serve.audit_log_text,
                                          .tls_cert = d_.serve.tls_cert,
                                          .tls_key = d_.serve.tls_key,
                                          .tls_client_ca = d_.serve.tls_client_ca,
                                          .allow_plaintext = d_.serve.allow_plaintext,
                                          .served_model_name = d_.serve.served_model_name,
                                          .generation_config = d_.serve.generation_config == "auto",
                                          .kv_cache_tokens = pool_->stats().kv_tokens_per_replica,
                                          .server_config = serve_config_json(d_.serve)},
                                         *text_, *pool_));
    rec_.port = server_->port();
    const std::string url_host = host == "0.0.0.0" ? address_.address : host;
    rec_.url = strformat("%s://%s:%u/v1", d_.serve.tls_cert.empty() ? "http" : "https",
                         url_host.c_str(), (unsigned)rec_.port);
    return {};
  }

  // Serves until a signal, or until the replicas are gone. A replica is lost when the pool
  // declares it dead (heartbeats, failed ranks) or when its srun step exits.
  Status watch() {
    std::vector<std::string> step_exit(d_.serve.replicas);
    std::string reported;
    while (true) {
      timespec tick{.tv_sec = 0, .tv_nsec = 200'000'000};
      const int sig = sigtimedwait(&signals_, nullptr, &tick);
      if (sig > 0) return stop(sig);
      reap(children_);
      for (int r = 0; r < d_.serve.replicas; ++r)
        if (children_[r].exited && step_exit[r].empty()) {
          const std::string said = step_errors(r);
          step_exit[r] = strformat("its srun step exited (%s)%s%s", children_[r].describe_exit().c_str(),
                                   said.empty() ? "" : ": ", said.c_str());
          PONDER_LOG(kError, "slurm", "%s: %s", describe_replica(r).c_str(), step_exit[r].c_str());
        }
      std::vector<bool> lost(d_.serve.replicas, false);
      std::vector<std::string> why(d_.serve.replicas);
      for (const auto& info : pool_->replicas())
        if (!info.healthy && info.replica_index >= 0 && info.replica_index < d_.serve.replicas) {
          lost[info.replica_index] = true;
          why[info.replica_index] = info.id + " = " + describe_replica(info.replica_index) + " stopped answering";
        }
      for (int r = 0; r < d_.serve.replicas; ++r)
        if (!step_exit[r].empty()) {
          lost[r] = true;
          why[r] = describe_replica(r) + ": " + step_exit[r];
        }
      std::vector<std::string> reasons;
      int healthy = 0;
      for (int r = 0; r < d_.serve.replicas; ++r) {
        if (lost[r]) {
          reasons.push_back(why[r]);
        } else {
          ++healthy;
        }
      }
      const std::string reason = join(reasons, "; ");
      if (healthy == 0) return error(StatusCode::kUnavailable, "every replica is lost: %s", reason.c_str());
      if (reason != reported) {
        reported = reason;
        rec_.state = reason.empty() ? "READY" : "DEGRADED";
        rec_.reason = reason.empty() ? "" : "lost " + reason;
        rec_.healthy_replicas = healthy;
        PONDER_LOG(kWarn, "slurm", "%s: %d of %d replicas healthy%s%s", rec_.state.c_str(), healthy,
                   d_.serve.replicas, reason.empty() ? "" : "; ", rec_.reason.c_str());
        PONDER_RETURN_IF_ERROR(publish());
      }
    }
  }

  // SIGUSR1 (the time limit or a preemption is near: --signal=B:USR1@grace) drains within the
  // grace and, with requeue, asks Slurm to run the job again; SIGTERM/SIGINT (`ponder slurm
  // cancel`, scancel) drain within drain_timeout_s and stop.
  Status stop(int sig) {
    const bool usr1 = sig == SIGUSR1;
    std::chrono::seconds drain(d_.serve.drain_timeout_s);
    if (usr1 && d_.slurm.signal_grace_s > 0)
      drain = std::min(drain, std::chrono::seconds(std::max<int64_t>(1, d_.slurm.signal_grace_s * 3 / 4)));
    rec_.state = "DRAINING";
    rec_.reason = usr1 ? "SIGUSR1: the time limit or a preemption is near" : std::string(strsignal(sig));
    rec_.healthy_replicas = 0;
    PONDER_LOG(kInfo, "slurm", "%s: draining (in-flight requests get up to %lld s, new ones 503)",
               rec_.reason.c_str(), (long long)drain.count());
    PONDER_RETURN_IF_ERROR(publish());
    server_->stop(drain);
    pool_->drain(std::chrono::milliseconds(1000));
    stop_children(children_, std::chrono::milliseconds(5000));
    if (usr1 && d_.slurm.requeue) {
      rec_.state = "REQUEUED";
      PONDER_RETURN_IF_ERROR(publish());
      PONDER_LOG(kInfo, "slurm", "drained; asking Slurm to requeue job %s", job_id_.c_str());
      std::fflush(stderr);
      return client_.requeue(job_id_);
    }
    rec_.state = "STOPPED";
    PONDER_RETURN_IF_ERROR(publish());
    PONDER_LOG(kInfo, "slurm", "drained and stopped");
    return {};
  }

  // FAILED, with the reason, in endpoint.json and the log; what runs is stopped, and the job ends
  // with this process (exit 1: sacct shows FAILED) instead of holding the allocation.
  void fail(const std::string& why) {
    PONDER_LOG(kError, "slurm", "job %s FAILED: %s", job_id_.c_str(), why.c_str());
    rec_.state = "FAILED";
    rec_.reason = why;
    rec_.healthy_replicas = 0;
    if (Status st = publish(); !st.ok()) PONDER_LOG(kError, "slurm", "%s", st.message().c_str());
    if (server_) server_->stop(std::chrono::milliseconds(0));
    stop_children(children_, std::chrono::milliseconds(0));
  }

  Status publish() {
    rec_.updated_unix = 0;
    return slurm::write_endpoint(job_dir_, rec_);
  }

  DeployConfig d_;
  std::string job_dir_;
  std::string job_id_;
  int restart_ = 0;
  slurm::EndpointRecord rec_;
  slurm::SlurmClient client_;
  std::vector<std::string> nodes_;
  slurm::NodeAddress address_;
  sigset_t signals_{}, original_mask_{};
  std::optional<coordinator::ModelText> text_;
  std::unique_ptr<ReplicaLinkKeys> link_keys_;  // outlives the pool; removes a run's keys at the end
  std::unique_ptr<coordinator::ReplicaPool> pool_;
  std::unique_ptr<coordinator::http::HttpServer> server_;
  std::vector<Child> children_;
};

}  // namespace

int run_slurm_launch(const std::string& deploy_path) {
  auto d = load_deploy_config(deploy_path, /*for_submit=*/false);
  if (!d) return report_failure("slurm launch", d.error());
  const std::string job_dir = std::filesystem::path(deploy_path).parent_path().string();
  Launch launch(std::move(*d), job_dir.empty() ? "." : job_dir);
  Status st = launch.run();
  return st.ok() ? 0 : report_failure("slurm launch", st);
}

int run_slurm_task(const std::string& task_file) {
  std::ifstream in(task_file);
  if (!in) return report_failure("slurm task", Status(StatusCode::kNotFound, "cannot read " + task_file));
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json task = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (!task.is_object() || !task["args"].is_array())
    return report_failure("slurm task", Status(StatusCode::kInvalidArgument, task_file + " is not a task file"));
  if (task["env"].is_object())
    for (auto& [name, value] : task["env"].items())
      if (value.is_string()) setenv(name.c_str(), value.get<std::string>().c_str(), 1);
  // This rank's own log: its index among all the deployment's ranks, per run, appended to.
  const int rank = task.value("first_rank", 0) + std::atoi(env_or("SLURM_PROCID", "0").c_str());
  const std::string log = slurm::rank_log_path(task.value("job_dir", std::string(".")), task.value("job_id", std::string("0")),
                                               rank, task.value("restart_count", 0));
  const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd >= 0) {
    std::fflush(stdout);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
  } else {
    std::fprintf(stderr, "ponder slurm task: cannot open %s: %s (logging here)\n", log.c_str(), std::strerror(errno));
  }
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  PONDER_LOG(kInfo, "slurm", "job %s run %d: rank %d (replica %d, its rank %s of %s, local %s) on %s",
             env_or("SLURM_JOB_ID", "?").c_str(), task.value("restart_count", 0), rank, task.value("replica", 0),
             env_or("SLURM_PROCID", "?").c_str(), env_or("SLURM_NTASKS", "?").c_str(),
             env_or("SLURM_LOCALID", "?").c_str(), host);
  std::vector<std::string> words;
  for (const auto& a : task["args"])
    if (a.is_string()) words.push_back(a.get<std::string>());
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  return run_replica(static_cast<int>(words.size()), argv.data());
}

}  // namespace ponder::apps
