// `ponder serve`: starts the coordinator — the HTTP API in front of the replicas — and the
// replicas themselves. One replica of one rank runs in this process; otherwise each replica is an
// mpirun of tp × pp `ponder replica` ranks (a child process group of ours) whose leader registers
// over ZeroMQ. SIGINT/SIGTERM drain: in-flight requests get drain_timeout_s, the replicas are told
// to finish, and the server exits 0.
#include "apps/serve_command.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "apps/args.h"
#include "apps/generate_options.h"
#include "apps/mpirun_launch.h"
#include "apps/serve_config.h"
#include "common/check.h"
#include "common/log.h"
#include "common/process_tree.h"
#include "common/strings.h"
#include "coordinator/http/http_server.h"
#include "coordinator/model_text.h"
#include "coordinator/replicas/in_process_dispatcher.h"
#include "coordinator/replicas/replica_pool.h"
#include "worker/backend/backend_factory.h"
#include "worker/model/architecture.h"
#include "worker/replica.h"

namespace ponder::apps {
namespace {

constexpr const char* kUsage = R"(usage: ponder serve [--config FILE.yaml] [--KEY VALUE ...]

Serves a model behind an OpenAI-compatible API (POST /v1/chat/completions, /v1/completions,
GET /v1/models, /health, /metrics). Settings come from the YAML file and from flags named after
its keys (underscores become dashes: --kv-cache-bytes); flags win. Keys:
)";

using Clock = std::chrono::steady_clock;

// A replica's mpirun, in a process group of its own.
struct Child {
  pid_t pid = -1;
  bool exited = false;
  int status = 0;
};

Expected<Child> spawn(const std::vector<std::string>& words, const sigset_t& original_mask) {
  std::vector<char*> argv;
  std::vector<std::string> copy = words;
  for (auto& w : copy) argv.push_back(w.data());
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return error(StatusCode::kUnavailable, "fork failed: %s", std::strerror(errno));
  if (pid == 0) {
    setpgid(0, 0);
    // If the server dies without draining, mpirun hears it and takes its ranks down.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);
    sigprocmask(SIG_SETMASK, &original_mask, nullptr);
    execvp(argv[0], argv.data());
    std::fprintf(stderr, "ponder serve: cannot start %s: %s\n", argv[0], std::strerror(errno));
    _exit(127);
  }
  setpgid(pid, pid);
  return Child{.pid = pid};
}

void reap(std::vector<Child>& children) {
  for (size_t i = 0; i < children.size(); ++i) {
    Child& c = children[i];
    if (c.exited) continue;
    int status = 0;
    if (waitpid(c.pid, &status, WNOHANG) == c.pid) {
      c.exited = true;
      c.status = status;
      PONDER_LOG(kWarn, "serve", "replica %zu (mpirun pid %d) exited: %s", i + 1, c.pid,
                 WIFEXITED(status) ? strformat("status %d", WEXITSTATUS(status)).c_str()
                                   : strformat("signal %d", WTERMSIG(status)).c_str());
    }
  }
}

// Stops what is left of the children: SIGTERM to each group (mpirun passes it to its ranks),
// then SIGKILL to each whole process tree (mpirun cannot pass that on, and its ranks sit in
// process groups of their own).
void stop_children(std::vector<Child>& children, std::chrono::milliseconds grace) {
  const auto until = Clock::now() + grace;
  auto all_exited = [&] {
    reap(children);
    for (const Child& c : children)
      if (!c.exited) return false;
    return true;
  };
  while (!all_exited() && Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  for (const Child& c : children)
    if (!c.exited) kill(-c.pid, SIGTERM);
  const auto hard = Clock::now() + std::chrono::seconds(5);
  while (!all_exited() && Clock::now() < hard) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  for (Child& c : children)
    if (!c.exited) {
      signal_tree(c.pid, SIGKILL);
      waitpid(c.pid, &c.status, 0);
      c.exited = true;
    }
}

Expected<ServeConfig> parse(int argc, char** argv) {
  static const char* kKeys[] = {
      "model", "served_model_name", "dtype", "backend", "tp", "pp", "stage_layers", "replicas",
      "threads", "kv_cache_bytes", "host", "port", "api_key", "max_n", "max_queued",
      "max_body_bytes", "token_budget", "max_running", "heartbeat_ms", "heartbeat_timeout_ms",
      "startup_timeout_s", "drain_timeout_s"};
  std::set<std::string> options = {"config"};
  auto flag = [](std::string key) {
    for (char& ch : key)
      if (ch == '_') ch = '-';
    return key;
  };
  for (const char* key : kKeys) options.insert(flag(key));
  PONDER_ASSIGN_OR_RETURN(Args args, Args::parse(argc, argv, {"help"}, options));
  if (args.has("help")) {
    std::fputs(kUsage, stdout);
    std::fputs(kServeConfigKeys, stdout);
    return error(StatusCode::kCancelled, "help");
  }
  ServeConfig config;
  if (auto path = args.get("config")) PONDER_RETURN_IF_ERROR(load_serve_config(config, *path));
  for (const char* key : kKeys)
    if (auto value = args.get(flag(key)))
      PONDER_RETURN_IF_ERROR(apply_serve_setting(config, key, *value, "--" + flag(key) + ": "));
  PONDER_RETURN_IF_ERROR(validate_serve_config(config));
  return config;
}

std::vector<std::string> replica_args(const ServeConfig& c, const std::string& endpoint, int threads) {
  std::vector<std::string> a = {"--coordinator", endpoint, "--model", c.model,
                                "--served-model-name", c.served_model_name,
                                "--tp", std::to_string(c.tp), "--pp", std::to_string(c.pp),
                                "--backend", c.backend, "--threads", std::to_string(threads),
                                "--precision", c.dtype == "float32" ? "exact" : "bf16",
                                "--kv-cache-bytes", std::to_string(c.kv_cache_bytes),
                                "--token-budget", std::to_string(c.token_budget),
                                "--max-running", std::to_string(c.max_running),
                                "--max-n", std::to_string(c.max_n),
                                "--heartbeat-ms", std::to_string(c.heartbeat_ms)};
  if (!c.stage_layers.empty()) {
    std::string layers;
    for (int64_t n : c.stage_layers) layers += (layers.empty() ? "" : ",") + std::to_string(n);
    a.insert(a.end(), {"--stage-layers", layers});
  }
  return a;
}

Status serve(const ServeConfig& c) {
  PONDER_ASSIGN_OR_RETURN(auto model_config, worker::load_model_config(c.model));
  PONDER_RETURN_IF_ERROR(status_of(worker::model_layout(model_config, c.tp * c.pp, c.tp, c.pp, c.stage_layers)));
  PONDER_ASSIGN_OR_RETURN(coordinator::ModelText text, coordinator::ModelText::load(c.model));

  // Signals are taken by sigwait below; every thread started from here on inherits the mask.
  sigset_t stop_signals, original_mask;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, &original_mask);

  PONDER_ASSIGN_OR_RETURN(worker::BackendKind backend, worker::parse_backend_kind(c.backend));
  const worker::MatmulPrecision precision =
      c.dtype == "float32" ? worker::MatmulPrecision::kExact : worker::MatmulPrecision::kBf16;
  worker::EngineOptions engine = text.engine_options();
  engine.token_budget = c.token_budget;
  engine.max_running = c.max_running;
  engine.max_n = static_cast<int32_t>(c.max_n);

  std::unique_ptr<coordinator::Dispatcher> dispatcher;
  coordinator::ReplicaPool* pool = nullptr;
  std::vector<Child> children;
  if (c.in_process()) {
    PONDER_ASSIGN_OR_RETURN(dispatcher, coordinator::InProcessDispatcher::create(
                                            {.model_dir = c.model,
                                             .backend = backend,
                                             .threads = c.threads,
                                             .precision = precision,
                                             .kv_cache_bytes = c.kv_cache_bytes,
                                             .engine = std::move(engine),
                                             .max_queued = c.max_queued}));
  } else {
    PONDER_ASSIGN_OR_RETURN(auto started, coordinator::ReplicaPool::start(
                                              {.model = c.served_model_name,
                                               .heartbeat = std::chrono::milliseconds(c.heartbeat_ms),
                                               .heartbeat_timeout = std::chrono::milliseconds(c.heartbeat_timeout_ms),
                                               .max_queued = c.max_queued,
                                               .think_end = text.think_end}));
    pool = started.get();
    dispatcher = std::move(started);
    const int ranks = c.replicas * c.tp * c.pp;
    const int threads = c.threads > 0 ? c.threads : std::max(1, worker::available_cores() / ranks);
    for (int r = 0; r < c.replicas; ++r) {
      PONDER_ASSIGN_OR_RETURN(auto words, mpirun_command(c.tp * c.pp, "replica",
                                                         replica_args(c, pool->endpoint(), threads)));
      PONDER_ASSIGN_OR_RETURN(Child child, spawn(words, original_mask));
      children.push_back(child);
    }
    PONDER_LOG(kInfo, "serve", "started %d replicas of tp%d pp%d (%d threads per rank)", c.replicas,
               c.tp, c.pp, threads);
    // Every replica registers, or the start fails naming the one that did not.
    const auto until = Clock::now() + std::chrono::seconds(c.startup_timeout_s);
    while (!pool->wait_for_replicas(c.replicas, std::chrono::milliseconds(100)).ok()) {
      reap(children);
      for (size_t i = 0; i < children.size(); ++i)
        if (children[i].exited) {
          stop_children(children, std::chrono::milliseconds(0));
          return error(StatusCode::kUnavailable, "replica %zu exited before registering (its errors are above)", i + 1);
        }
      if (Clock::now() >= until) {
        Status st = pool->wait_for_replicas(c.replicas, std::chrono::milliseconds(0));
        if (st.ok()) break;
        stop_children(children, std::chrono::milliseconds(0));
        return st;
      }
    }
  }

  PONDER_ASSIGN_OR_RETURN(auto server,
                          coordinator::http::HttpServer::start(
                              {.host = c.host,
                               .port = static_cast<uint16_t>(c.port),
                               .max_body_bytes = c.max_body_bytes,
                               .max_n = static_cast<int32_t>(c.max_n),
                               .api_key = c.api_key,
                               .served_model_name = c.served_model_name},
                              text, *dispatcher));
  const std::string base = strformat("http://%s:%u", c.host.c_str(), server->port());
  std::printf("ponder serve: %s is served at %s/v1 (%d replica%s of tp%d pp%d)\n",
              c.served_model_name.c_str(), base.c_str(), c.replicas, c.replicas == 1 ? "" : "s", c.tp, c.pp);
  std::printf("  try: curl -s %s/v1/chat/completions -H 'Content-Type: application/json' \\\n"
              "         -d '{\"model\": \"%s\", \"messages\": [{\"role\": \"user\", \"content\": \"What is 47 * 23 + 158?\"}]}'\n"
              "  or any OpenAI client with base_url=%s/v1; Ctrl-C drains and stops.\n",
              base.c_str(), c.served_model_name.c_str(), base.c_str());
  std::fflush(stdout);

  // Wait for SIGINT/SIGTERM, watching the replicas meanwhile.
  int signal = 0;
  while (signal == 0) {
    timespec tick{.tv_sec = 0, .tv_nsec = 200'000'000};
    int s = sigtimedwait(&stop_signals, nullptr, &tick);
    if (s > 0) signal = s;
    reap(children);
  }
  const auto drain = std::chrono::seconds(c.drain_timeout_s);
  PONDER_LOG(kInfo, "serve", "%s: draining (up to %lld s)", strsignal(signal), (long long)drain.count());
  server->stop(drain);
  if (pool) pool->drain(std::chrono::milliseconds(1000));
  stop_children(children, std::chrono::milliseconds(2000));
  server.reset();
  dispatcher.reset();
  PONDER_LOG(kInfo, "serve", "stopped");
  return {};
}

}  // namespace

int run_serve(int argc, char** argv) {
  auto config = parse(argc, argv);
  if (!config) return report_failure("serve", config.error());
  Status st = serve(*config);
  return st.ok() ? 0 : report_failure("serve", st);
}

}  // namespace ponder::apps
