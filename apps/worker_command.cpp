// `ponder worker`: every rank of an mpirun job loads its shard (tp × pp layout); the replica
// leader runs the prompt and streams the continuation, the other ranks execute its plans.
#include "apps/worker_command.h"

#include <cstdio>

#include "apps/generate_options.h"
#include "collective/mpi_communicator.h"
#include "common/check.h"
#include "common/log.h"
#include "common/process_env.h"
#include "worker/backend/cpu/cpu_backend.h"
#include "worker/engine/engine.h"
#include "worker/replica.h"

namespace ponder::apps {
namespace {

Status work(const GenerateOptions& o, int* argc, char*** argv) {
  PONDER_ASSIGN_OR_RETURN(auto mpi, collective::MpiRuntime::init(argc, argv));
  PONDER_ASSIGN_OR_RETURN(auto world, collective::MpiCommunicator::world());
  if (world->size() % o.ranks_per_replica() != 0)
    return error(StatusCode::kInvalidArgument,
                 "%d ranks do not divide into replicas of tp × pp × ep = %d", world->size(),
                 o.ranks_per_replica());
  // Every rank tokenizes (cheap) so that all size their KV cache alike.
  PONDER_ASSIGN_OR_RETURN(PreparedPrompt prompt, prepare_prompt(o));
  // Ranks on one machine share its cores unless told otherwise.
  const ProcessEnv env = ProcessEnv::read();
  int threads = o.threads;
  if (threads == 0) threads = std::max(1, worker::available_cores() / env.ompi_local_size.value_or(1));
  worker::ReplicaOptions options{.model_dir = o.model_dir,
                                 .tp = o.tp,
                                 .pp = o.pp,
                                 .ep = o.ep,
                                 .stage_layers = o.stage_layers,
                                 .kv_blocks = (static_cast<int64_t>(prompt.ids.size()) + prompt.max_tokens) / 16 + 2,
                                 .kv_dtype = o.kv_dtype,
                                 .backend = {.kind = o.backend,
                                             .cpu = {.n_threads = threads, .precision = o.precision}},
                                 .timeout = o.timeout,
                                 .load = {.quantize = o.quantize}};
  PONDER_ASSIGN_OR_RETURN(auto replica, worker::Replica::create(*world, options));
  if (world->size() != o.ranks_per_replica())
    PONDER_LOG(kWarn, "worker", "%d ranks make %d replicas; only the first runs the prompt",
               world->size(), world->size() / o.ranks_per_replica());
  if (!replica->is_leader()) return replica->serve();

  // Replica 0's leader runs the prompt; other replicas' leaders only release their ranks.
  worker::Engine engine(*replica, engine_options(prompt));
  Status st = replica->role().replica == 0
                  ? run_generation(engine, o, prompt,
                                   o.ep > 1 ? strformat("tp%dpp%dep%d", o.tp, o.pp, o.ep)
                                            : strformat("tp%dpp%d", o.tp, o.pp))
                  : Status();
  Status shutdown = replica->shutdown();
  PONDER_RETURN_IF_ERROR(st);
  PONDER_RETURN_IF_ERROR(shutdown);
  return {};
}

}  // namespace

int run_worker(int argc, char** argv) {
  auto options = parse_generate_options(argc, argv);
  if (!options) return report_failure("worker", options.error());
  return finish_rank("worker", work(*options, &argc, &argv));
}

}  // namespace ponder::apps
