// `ponder serve`: starts the coordinator — the HTTP API in front of the replicas — and the
// replicas themselves. One replica of one rank runs in this process; otherwise each replica is an
// mpirun of tp × pp `ponder replica` ranks (a child process group of ours) whose leader registers
// over ZeroMQ; a replica that exits or is lost is restarted (ReplicaSupervisor, with backoff, up
// to max_replica_restarts times). SIGINT/SIGTERM drain: in-flight requests get drain_timeout_s,
// the replicas are told to finish, and the server exits 0.
#include "apps/serve_command.h"

#include <signal.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "apps/args.h"
#include "apps/generate_options.h"
#include "apps/mpirun_launch.h"
#include "apps/replica_link_keys.h"
#include "apps/replica_processes.h"
#include "apps/serve_config.h"
#include "common/check.h"
#include "common/log.h"
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

Expected<ServeConfig> parse(int argc, char** argv) {
  static const char* kKeys[] = {
      "model", "served_model_name", "dtype", "backend", "tp", "pp", "ep", "stage_layers", "replicas",
      "threads", "kv_cache_bytes", "kv_cache_dtype", "quantize", "host", "port", "api_key", "api_key_file", "api_keys_file",
      "audit_log", "audit_log_text", "tool_call_parser", "generation_config", "tls_cert", "tls_key", "tls_client_ca", "allow_plaintext", "max_n",
      "max_queued", "max_body_bytes", "token_budget", "max_running", "heartbeat_ms",
      "heartbeat_timeout_ms", "collective_timeout_ms", "startup_timeout_s", "drain_timeout_s",
      "max_replica_restarts", "replica_restart_backoff_ms", "replica_curve", "curve_keys_dir"};
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

Status serve(const ServeConfig& c) {
  PONDER_ASSIGN_OR_RETURN(auto model_config, worker::load_model_config(c.model));
  PONDER_RETURN_IF_ERROR(status_of(worker::model_layout(model_config, c.ranks_per_replica(), c.tp,
                                                        c.pp, c.stage_layers, c.ep)));
  PONDER_ASSIGN_OR_RETURN(coordinator::ModelText text, load_served_model_text(c));
  // The key stays in this process: the replicas' command lines (replica_args) never carry it.
  PONDER_ASSIGN_OR_RETURN(const std::string api_key, serve_api_key(c));

  // Signals are taken by sigwait below; every thread started from here on inherits the mask.
  sigset_t stop_signals, original_mask;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);  // reloads api_keys_file
  pthread_sigmask(SIG_BLOCK, &stop_signals, &original_mask);

  PONDER_ASSIGN_OR_RETURN(worker::BackendKind backend, worker::parse_backend_kind(c.backend));
  const worker::MatmulPrecision precision =
      c.dtype == "float32" ? worker::MatmulPrecision::kExact : worker::MatmulPrecision::kBf16;
  worker::EngineOptions engine = text.engine_options();
  engine.token_budget = c.token_budget;
  engine.max_running = c.max_running;
  engine.max_n = static_cast<int32_t>(c.max_n);

  std::unique_ptr<ReplicaLinkKeys> link_keys;  // outlives the pool; removes a run's keys at the end
  std::unique_ptr<coordinator::Dispatcher> dispatcher;
  coordinator::ReplicaPool* pool = nullptr;
  std::vector<Child> children;
  std::unique_ptr<ReplicaSupervisor> supervisor;
  if (c.in_process()) {
    PONDER_ASSIGN_OR_RETURN(dispatcher, coordinator::InProcessDispatcher::create(
                                            {.model_dir = c.model,
                                             .backend = backend,
                                             .threads = c.threads,
                                             .precision = precision,
                                             .kv_cache_bytes = c.kv_cache_bytes,
                                             .kv_dtype = *worker::parse_kv_cache_dtype(
                                                 c.kv_cache_dtype, "kv_cache_dtype"),
                                             .quantize = *worker::parse_weight_quant(c.quantize),
                                             .engine = std::move(engine),
                                             .max_queued = c.max_queued}));
  } else {
    PONDER_ASSIGN_OR_RETURN(link_keys, ReplicaLinkKeys::prepare(c, run_keys_template(ProcessEnv::read())));
    PONDER_ASSIGN_OR_RETURN(auto started, coordinator::ReplicaPool::start(
                                              {.model = c.served_model_name,
                                               .heartbeat = std::chrono::milliseconds(c.heartbeat_ms),
                                               .heartbeat_timeout = std::chrono::milliseconds(c.heartbeat_timeout_ms),
                                               .max_queued = c.max_queued,
                                               .think_start = text.think_start,
                                               .think_end = text.think_end,
                                               .replace_same_index = true,
                                               // In flight when the last replica went: wait
                                               // for a restart rather than fail.
                                               .hold_unplaced = c.max_replica_restarts > 0
                                                                    ? std::chrono::milliseconds(60'000)
                                                                    : std::chrono::milliseconds(0),
                                               .curve = link_keys->server()}));
    pool = started.get();
    dispatcher = std::move(started);
    const int ranks = c.replicas * c.ranks_per_replica();
    const int threads = c.threads > 0 ? c.threads : std::max(1, worker::available_cores() / ranks);
    std::vector<std::vector<std::string>> commands;
    for (int r = 0; r < c.replicas; ++r) {
      std::vector<std::string> args = replica_args(c, pool->endpoint(), threads);
      // Each replica's mpirun is a world of its own: its index says which replica a restart is.
      args.insert(args.end(), {"--replica-index", std::to_string(r)});
      const std::vector<std::string> curve = link_keys->replica_args(r);  // key files, never keys
      args.insert(args.end(), curve.begin(), curve.end());
      PONDER_ASSIGN_OR_RETURN(auto words, mpirun_command(c.ranks_per_replica(), "replica", args));
      PONDER_ASSIGN_OR_RETURN(Child child, spawn(strformat("replica %d (mpirun)", r), words, original_mask));
      children.push_back(child);
      commands.push_back(std::move(words));
    }
    PONDER_LOG(kInfo, "serve", "started %d replicas of tp%d pp%d (%d threads per rank)", c.replicas,
               c.tp, c.pp, threads);
    // Every replica registers, or the start fails naming the one that did not.
    Status registered = wait_for_registration(*pool, c.replicas, children, std::chrono::seconds(c.startup_timeout_s),
                                              stop_signals);
    if (!registered.ok()) {
      stop_children(children, std::chrono::milliseconds(0));
      if (registered.code() != StatusCode::kCancelled) return registered;
      PONDER_LOG(kInfo, "serve", "stopped: %s", registered.message().c_str());
      return {};
    }
    supervisor = std::make_unique<ReplicaSupervisor>(
        *pool, std::move(children), std::move(commands), original_mask,
        SupervisorOptions{.max_restarts = c.max_replica_restarts,
                          .backoff = std::chrono::milliseconds(c.replica_restart_backoff_ms),
                          .startup_timeout = std::chrono::seconds(c.startup_timeout_s)});
    children.clear();
  }

  PONDER_ASSIGN_OR_RETURN(auto server,
                          coordinator::http::HttpServer::start(
                              {.host = c.host,
                               .port = static_cast<uint16_t>(c.port),
                               .max_body_bytes = c.max_body_bytes,
                               .max_n = static_cast<int32_t>(c.max_n),
                               .api_key = api_key,
                               .api_keys_file = c.api_keys_file,
                               .audit_log = c.audit_log,
                               .audit_log_text = c.audit_log_text,
                               .tls_cert = c.tls_cert,
                               .tls_key = c.tls_key,
                               .tls_client_ca = c.tls_client_ca,
                               .allow_plaintext = c.allow_plaintext,
                               .served_model_name = c.served_model_name,
                               .generation_config = c.generation_config == "auto",
                               // Every replica has registered: default max_tokens fits its cache.
                               .kv_cache_tokens = dispatcher->stats().kv_tokens_per_replica,
                               .server_config = serve_config_json(c)},
                              text, *dispatcher));
  const std::string base =
      strformat("%s://%s:%u", c.tls_cert.empty() ? "http" : "https", c.host.c_str(), server->port());
  std::printf("ponder serve: %s is served at %s/v1 (%d replica%s of tp%d pp%d)\n",
              c.served_model_name.c_str(), base.c_str(), c.replicas, c.replicas == 1 ? "" : "s", c.tp, c.pp);
  std::printf("  try: curl -s %s/v1/chat/completions -H 'Content-Type: application/json' \\\n"
              "         -d '{\"model\": \"%s\", \"messages\": [{\"role\": \"user\", \"content\": \"What is 47 * 23 + 158?\"}]}'\n"
              "  or any OpenAI client with base_url=%s/v1; Ctrl-C drains and stops.\n",
              base.c_str(), c.served_model_name.c_str(), base.c_str());
  std::fflush(stdout);

  // Wait for SIGINT/SIGTERM, restarting replicas that exit or are lost meanwhile; SIGHUP reloads
  // the API keys.
  int signal = 0;
  while (signal == 0) {
    timespec tick{.tv_sec = 0, .tv_nsec = 200'000'000};
    int s = sigtimedwait(&stop_signals, nullptr, &tick);
    if (s == SIGHUP) {
      Status reloaded = server->reload_api_keys();
      if (!reloaded.ok())
        PONDER_LOG(kError, "serve", "SIGHUP: %s (the keys in use stay)", reloaded.message().c_str());
    } else if (s > 0) {
      signal = s;
    }
    if (supervisor && signal == 0) supervisor->tick();
  }
  const auto drain = std::chrono::seconds(c.drain_timeout_s);
  PONDER_LOG(kInfo, "serve", "%s: draining (up to %lld s)", strsignal(signal), (long long)drain.count());
  server->stop(drain);
  if (pool) pool->drain(std::chrono::milliseconds(1000));
  if (supervisor) children = supervisor->children();
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
