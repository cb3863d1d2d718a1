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
#include "collective/world_layout.h"
#include "common/check.h"
#include "common/log.h"
#include "worker/engine/engine.h"
#include "worker/model/architecture.h"
#include "worker/model/decoder_model.h"

namespace ponder::apps {
namespace {

Status generate(const GenerateOptions& o) {
  PONDER_ASSIGN_OR_RETURN(PreparedPrompt prompt, prepare_prompt(o));
  PONDER_ASSIGN_OR_RETURN(auto model, worker::DecoderModel::load(o.model_dir));
  PONDER_ASSIGN_OR_RETURN(auto backend, worker::CpuBackend::create(
                                            {.n_threads = o.threads, .precision = o.precision}));
  const auto& config = model->config();
  const int64_t total = static_cast<int64_t>(prompt.ids.size()) + o.max_tokens;
  PONDER_ASSIGN_OR_RETURN(auto cache,
                          worker::KvCache::create(model->kv_cache_config(total / 16 + 2)));
  PONDER_LOG(kInfo, "generate", "%s: %s, %lld layers, %.1f M parameters, %s kernels, %d threads",
             o.model_dir.c_str(), config.architecture.c_str(), (long long)config.n_layers,
             config.total_params() / 1e6, backend->isa(), backend->n_threads());
  worker::LocalExecutor executor(*model, *backend, cache);
  worker::Engine engine(executor, engine_options(prompt));
  return run_generation(engine, o, prompt, "tp1pp1");
}

// Replaces this process with `mpirun -np tp×pp <this binary> worker <the same options>`, with
// what Open MPI needs on one machine: loopback-only transports (shared memory between ranks, TCP
// out-of-band on lo), oversubscription, and --allow-run-as-root when root. The layout is checked
// first so that a bad --tp/--pp is one clear error, not one per rank. (mpirun's --enable-recovery
// would let survivors of a dead rank report their own kTimeout/kRemote, but mpirun then exits 0
// whatever the ranks returned; for a one-shot job the non-zero exit matters more.)
Status exec_mpirun(const GenerateOptions& o, int argc, char** argv) {
  PONDER_ASSIGN_OR_RETURN(auto config, worker::load_model_config(o.model_dir));
  PONDER_ASSIGN_OR_RETURN(auto layout, collective::WorldLayout::create({.world_size = o.tp * o.pp,
                                                          .tp = o.tp,
                                                          .pp = o.pp,
                                                          .n_heads = config.n_heads,
                                                          .n_kv_heads = config.n_kv_heads,
                                                          .n_layers = config.n_layers,
                                                          .hidden_size = config.hidden_size,
                                                          .intermediate_size = config.intermediate_size,
                                                          .stage_layers = o.stage_layers}));
  (void)layout;
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return error(StatusCode::kInternal, "cannot find the ponder binary (/proc/self/exe)");
  self[n] = '\0';
  setenv("OMPI_MCA_btl", "self,vader", 0);
  setenv("OMPI_MCA_btl_vader_single_copy_mechanism", "none", 0);
  setenv("OMPI_MCA_oob_tcp_if_include", "lo", 0);
  std::vector<std::string> words = {"mpirun", "--oversubscribe", "--bind-to", "none", "-np",
                                    std::to_string(o.tp * o.pp)};
  if (geteuid() == 0) words.insert(words.begin() + 1, "--allow-run-as-root");
  words.push_back(self);
  words.push_back("worker");
  for (int i = 0; i < argc; ++i) words.push_back(argv[i]);
  std::vector<char*> cargv;
  for (auto& w : words) cargv.push_back(w.data());
  cargv.push_back(nullptr);
  std::fflush(stdout);
  execvp("mpirun", cargv.data());
  return error(StatusCode::kUnavailable, "cannot start mpirun (is openmpi-bin installed?): %s",
               std::strerror(errno));
}

}  // namespace

int run_generate(int argc, char** argv) {
  auto options = parse_generate_options(argc, argv);
  if (!options) return report_failure("generate", options.error());
  Status st = options->tp * options->pp > 1 ? exec_mpirun(*options, argc, argv) : generate(*options);
  return st.ok() ? 0 : report_failure("generate", st);
}

}  // namespace ponder::apps
