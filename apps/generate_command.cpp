// `ponder generate`: one prompt through the CPU engine on this process, the continuation streamed
// to stdout as it is produced and speeds to stderr (--json: one object instead). With --tp/--pp
// it starts tp × pp ranks of `ponder worker` under mpirun itself.
#include "apps/generate_command.h"

#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "apps/generate_options.h"
#include "apps/mpirun_launch.h"
#include "common/check.h"
#include "common/log.h"
#include "worker/engine/engine.h"
#include "worker/model/architecture.h"
#include "worker/model/decoder_model.h"
#include "worker/replica.h"

namespace ponder::apps {
namespace {

Status generate(const GenerateOptions& o) {
  PONDER_ASSIGN_OR_RETURN(PreparedPrompt prompt, prepare_prompt(o));
  PONDER_ASSIGN_OR_RETURN(auto model, worker::DecoderModel::load(o.model_dir, {.quantize = o.quantize}));
  PONDER_ASSIGN_OR_RETURN(
      auto backend,
      worker::create_backend({.kind = o.backend,
                              .cpu = {.n_threads = o.threads, .precision = o.precision}}));
  PONDER_RETURN_IF_ERROR(model->move_to(*backend));
  const auto& config = model->config();
  const int64_t total = static_cast<int64_t>(prompt.ids.size()) + prompt.max_tokens;
  PONDER_ASSIGN_OR_RETURN(auto cache, worker::KvCache::create(model->kv_cache_config(total / 16 + 2, 16, o.kv_dtype),
                                                              backend->memory()));
  PONDER_LOG(kInfo, "generate", "%s: %s, %lld layers, %.1f M parameters, %s backend: %s",
             o.model_dir.c_str(), config.architecture.c_str(), (long long)config.n_layers,
             config.total_params() / 1e6, std::string(backend->name()).c_str(),
             backend->description().c_str());
  worker::LocalExecutor executor(*model, *backend, cache);
  worker::Engine engine(executor, engine_options(prompt));
  return run_generation(engine, o, prompt, "tp1pp1");
}

// With --tp/--pp: check the layout against the model first (one clear error, not one per rank),
// then start the ranks.
Status launch_ranks(const GenerateOptions& o, int argc, char** argv) {
  PONDER_ASSIGN_OR_RETURN(auto config, worker::load_model_config(o.model_dir));
  PONDER_RETURN_IF_ERROR(status_of(worker::model_layout(config, o.ranks_per_replica(), o.tp, o.pp,
                                                        o.stage_layers, o.ep)));
  return exec_mpirun(o.ranks_per_replica(), "worker", argc, argv);
}

}  // namespace

int run_generate(int argc, char** argv) {
  auto options = parse_generate_options(argc, argv);
  if (!options) return report_failure("generate", options.error());
  Status st = options->ranks_per_replica() > 1 ? launch_ranks(*options, argc, argv) : generate(*options);
  return st.ok() ? 0 : report_failure("generate", st);
}

}  // namespace ponder::apps
