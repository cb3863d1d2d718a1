// `ponder replica`: every rank of an mpirun (or srun) job loads its shard of a tp × pp layout;
// each replica's leader connects to the coordinator's ZeroMQ endpoint and runs the engine for it
// (coordinator/replicas/replica_server.h) while its other ranks execute the plans. `ponder serve`
// starts these itself; run by hand it lets replicas join a coordinator from other machines.
#include "apps/replica_command.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "apps/args.h"
#include "apps/generate_options.h"
#include "collective/mpi_communicator.h"
#include "common/check.h"
#include "common/log.h"
#include "common/process_env.h"
#include "common/strings.h"
#include "coordinator/model_text.h"
#include "coordinator/replicas/replica_server.h"
#include "worker/engine/engine.h"
#include "worker/model/architecture.h"
#include "worker/replica.h"

namespace ponder::apps {
namespace {

constexpr const char* kUsage = R"(usage: ponder replica --coordinator ENDPOINT --model DIR [options]
  (under mpirun -np tp×pp×ep×R, or started by `ponder serve`)

  --coordinator E      the coordinator's replica endpoint, e.g. tcp://127.0.0.1:5555
  --model DIR          Hugging Face model directory
  --served-model-name  the name the coordinator serves (default: the directory's base name)
  --tp N, --pp N       tensor / pipeline parallel degree of each replica (default 1, 1)
  --ep N               expert parallelism (MoE models): routed experts over N columns of tp ranks
  --stage-layers L     comma-separated layers per pipeline stage (default: even)
  --backend B          cpu (default) or cuda (one GPU per rank, picked by SLURM_LOCALID or the
                       MPI local rank; TP/PP collectives over NCCL)
  --threads N          CPU threads per rank (default: the cores divided among local ranks)
  --precision P        bf16 (default) or exact
  --kv-cache-bytes B   KV cache of each replica, in bytes (default 268435456)
  --kv-cache-dtype D   f32 (default) or bf16
  --quantize Q         none (default) or int8 (load-time int8 weights; CPU backend)
  --token-budget N     tokens per engine step (default 512)
  --max-running N      sequences running at once (default 256)
  --max-n N            largest n a request may ask for (default 64)
  --heartbeat-ms N     heartbeat interval (default 250)
  --timeout-ms N       deadline of every collective between the ranks (default 60000)
  --replica-index N    this replica's index in a deployment that starts each replica as a world
                       of its own (`ponder slurm`); default: its index in this MPI world
  --curve-server-key F the coordinator's CURVE public key file (server.pub of `ponder keys
                       generate`): the link is encrypted and the coordinator's key verified
  --curve-key F        this replica's CURVE secret key file (replica-I.key, mode 0600; its public
                       key must be in the coordinator's allowed/). Both or neither; files, never
                       keys, on the command line: ps shows it to every user
)";

struct ReplicaCommandOptions {
  coordinator::ReplicaServerOptions server;
  std::string model_dir;
  int tp = 1, pp = 1, ep = 1;
  std::vector<int64_t> stage_layers;
  worker::BackendKind backend = worker::BackendKind::kCpu;
  int threads = 0;
  worker::MatmulPrecision precision = worker::MatmulPrecision::kBf16;
  int64_t kv_cache_bytes = int64_t{256} << 20;
  worker::DType kv_dtype = worker::DType::kF32;
  worker::WeightQuant quantize = worker::WeightQuant::kNone;
  int32_t token_budget = 512;
  std::chrono::milliseconds timeout{60'000};
  int replica_index = -1;  // -1: the replica's index in the MPI world
};

Expected<ReplicaCommandOptions> parse(int argc, char** argv) {
  PONDER_ASSIGN_OR_RETURN(
      Args args, Args::parse(argc, argv, {"help"},
                             {"coordinator", "model", "served-model-name", "tp", "pp", "ep", "stage-layers",
                              "backend", "threads", "precision", "kv-cache-bytes", "kv-cache-dtype", "quantize", "token-budget",
                              "max-running", "max-n", "heartbeat-ms", "timeout-ms", "replica-index",
                              "curve-server-key", "curve-key"}));
  if (args.has("help")) {
    std::fputs(kUsage, stdout);
    return error(StatusCode::kCancelled, "help");
  }
  ReplicaCommandOptions o;
  PONDER_ASSIGN_OR_RETURN(o.server.endpoint, args.require("coordinator"));
  PONDER_ASSIGN_OR_RETURN(o.model_dir, args.require("model"));
  o.server.model = args.get("served-model-name")
                       .value_or(std::filesystem::path(o.model_dir).lexically_normal().filename().string());
  if (o.server.model.empty())
    o.server.model = std::filesystem::path(o.model_dir).lexically_normal().parent_path().filename().string();
  PONDER_ASSIGN_OR_RETURN(int64_t tp, args.get_int("tp", 1));
  PONDER_ASSIGN_OR_RETURN(int64_t pp, args.get_int("pp", 1));
  PONDER_ASSIGN_OR_RETURN(int64_t ep, args.get_int("ep", 1));
  if (tp < 1 || pp < 1 || ep < 1)
    return error(StatusCode::kInvalidArgument, "--tp, --pp and --ep must be at least 1");
  o.ep = static_cast<int>(ep);
  o.tp = static_cast<int>(tp);
  o.pp = static_cast<int>(pp);
  PONDER_ASSIGN_OR_RETURN(auto stages, args.get_int_list("stage-layers"));
  o.stage_layers.assign(stages.begin(), stages.end());
  PONDER_ASSIGN_OR_RETURN(o.backend, worker::parse_backend_kind(args.get("backend").value_or("cpu")));
  PONDER_ASSIGN_OR_RETURN(int64_t threads, args.get_int("threads", 0));
  o.threads = static_cast<int>(threads);
  PONDER_ASSIGN_OR_RETURN(o.precision,
                          worker::parse_matmul_precision(args.get("precision").value_or("bf16")));
  PONDER_ASSIGN_OR_RETURN(o.kv_cache_bytes, args.get_int("kv-cache-bytes", o.kv_cache_bytes));
  PONDER_ASSIGN_OR_RETURN(o.kv_dtype, worker::parse_kv_cache_dtype(
                                          args.get("kv-cache-dtype").value_or("f32"), "--kv-cache-dtype"));
  PONDER_ASSIGN_OR_RETURN(o.quantize,
                          worker::parse_weight_quant(args.get("quantize").value_or("none")));
  PONDER_ASSIGN_OR_RETURN(int64_t budget, args.get_int("token-budget", 512));
  PONDER_ASSIGN_OR_RETURN(int64_t running, args.get_int("max-running", 256));
  PONDER_ASSIGN_OR_RETURN(int64_t max_n, args.get_int("max-n", 64));
  PONDER_ASSIGN_OR_RETURN(int64_t heartbeat, args.get_int("heartbeat-ms", 250));
  PONDER_ASSIGN_OR_RETURN(int64_t timeout, args.get_int("timeout-ms", 60'000));
  PONDER_ASSIGN_OR_RETURN(int64_t replica_index, args.get_int("replica-index", -1));
  if (replica_index < -1 || replica_index > (1 << 20))
    return error(StatusCode::kInvalidArgument, "--replica-index must be a replica number, got %lld",
                 (long long)replica_index);
  o.replica_index = static_cast<int>(replica_index);
  if (budget < 1 || running < 1 || max_n < 1 || heartbeat < 1 || timeout < 1)
    return error(StatusCode::kInvalidArgument,
                 "--token-budget, --max-running, --max-n, --heartbeat-ms and --timeout-ms must be positive");
  o.token_budget = static_cast<int32_t>(budget);
  o.server.max_running = static_cast<int32_t>(running);
  o.server.max_n = static_cast<int32_t>(max_n);
  o.server.heartbeat = std::chrono::milliseconds(heartbeat);
  o.timeout = std::chrono::milliseconds(timeout);
  o.server.tp = o.tp;
  o.server.pp = o.pp;
  // Every rank reads the keys, so a bad file fails them all alike, before MPI starts.
  const auto server_key = args.get("curve-server-key");
  const auto own_key = args.get("curve-key");
  if (server_key.has_value() != own_key.has_value())
    return error(StatusCode::kInvalidArgument, "--curve-server-key and --curve-key go together (the coordinator's "
                 "public key and this replica's secret key)");
  if (server_key) {
    PONDER_ASSIGN_OR_RETURN(o.server.curve, coordinator::load_curve_client_keys(*server_key, *own_key));
  }
  return o;
}

Status serve(ReplicaCommandOptions& o, int* argc, char*** argv) {
  PONDER_ASSIGN_OR_RETURN(auto mpi, collective::MpiRuntime::init(argc, argv));
  PONDER_ASSIGN_OR_RETURN(auto world, collective::MpiCommunicator::world());
  PONDER_ASSIGN_OR_RETURN(auto config, worker::load_model_config(o.model_dir));
  PONDER_RETURN_IF_ERROR(
      status_of(worker::model_layout(config, world->size(), o.tp, o.pp, o.stage_layers, o.ep)));
  // The budget holds whole-model blocks; each rank's share of every block is smaller.
  worker::KvCacheConfig kv_layout = worker::kv_cache_layout(config, config.n_layers, config.n_kv_heads);
  kv_layout.dtype = o.kv_dtype;
  const int64_t block_bytes = worker::KvCache::block_bytes(kv_layout);
  const int64_t kv_blocks = o.kv_cache_bytes / block_bytes;
  if (kv_blocks < 2)
    return error(StatusCode::kInvalidArgument, "--kv-cache-bytes %lld holds fewer than 2 KV blocks of %lld bytes",
                 (long long)o.kv_cache_bytes, (long long)block_bytes);
  const ProcessEnv env = ProcessEnv::read();
  int threads = o.threads;
  if (threads == 0) threads = std::max(1, worker::available_cores() / env.ompi_local_size.value_or(1));
  worker::ReplicaOptions options{.model_dir = o.model_dir,
                                 .tp = o.tp,
                                 .pp = o.pp,
                                 .ep = o.ep,
                                 .stage_layers = o.stage_layers,
                                 .kv_blocks = kv_blocks,
                                 .kv_dtype = o.kv_dtype,
                                 .backend = {.kind = o.backend,
                                             .cpu = {.n_threads = threads, .precision = o.precision}},
                                 .timeout = o.timeout,
                                 .load = {.quantize = o.quantize}};
  PONDER_ASSIGN_OR_RETURN(auto replica, worker::Replica::create(*world, options));
  if (!replica->is_leader()) return replica->serve();

  worker::EngineOptions engine_options;
  auto text = coordinator::ModelText::load(o.model_dir);
  if (text) {
    engine_options = text->engine_options();
  } else if (text.error().code() != StatusCode::kNotFound) {
    return text.error();
  }
  engine_options.token_budget = o.token_budget;
  engine_options.max_running = o.server.max_running;
  engine_options.max_n = o.server.max_n;
  worker::Engine engine(*replica, std::move(engine_options));
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  o.server.host = host;
  o.server.replica_index = o.replica_index >= 0 ? o.replica_index : replica->role().replica;
  o.server.name = strformat("replica-%d on %s", o.server.replica_index, host);
  o.server.kv_blocks = kv_blocks;
  o.server.kv_bytes_per_token = block_bytes / kv_layout.block_size;
  const bool alone = o.tp * o.pp * o.ep == 1;
  Status st = coordinator::serve_replica(engine, o.server,
                                         alone ? std::function<Status()>() : [&] { return replica->ping(); });
  Status shutdown = replica->shutdown();
  PONDER_RETURN_IF_ERROR(st);
  return shutdown;
}

}  // namespace

int run_replica(int argc, char** argv) {
  auto options = parse(argc, argv);
  if (!options) return options.error().code() == StatusCode::kCancelled ? 0 : report_failure("replica", options.error());
  return finish_rank("replica", serve(*options, &argc, &argv));
}

}  // namespace ponder::apps
