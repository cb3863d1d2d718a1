// The `ponder` command line: one binary, one subcommand per job.
#include <cstdio>
#include <cstring>
#include <string>

#include "apps/bench_command.h"
#include "apps/complete_command.h"
#include "apps/generate_command.h"
#include "apps/api_keys_command.h"
#include "apps/keys_command.h"
#include "apps/replica_command.h"
#include "apps/serve_command.h"
#include "apps/slurm_command.h"
#include "apps/sweep_command.h"
#include "apps/tokenize_command.h"
#include "apps/worker_command.h"

namespace {

constexpr const char* kUsage = R"(usage: ponder COMMAND [options]   (ponder COMMAND --help for details)

commands:
  complete   complete every prompt of a JSONL file at once (n samples each), JSONL out
  generate   run one prompt through a model and stream the continuation
  serve      an OpenAI-compatible API server for a model, with its replicas
  tokenize   token ids of each line of a file (or --decode ids back to text)
  worker     one rank of a tensor/pipeline-parallel replica (under mpirun or srun)
  replica    the ranks of replicas serving a coordinator (started by `ponder serve`)
  bench      measure prefill/decode speed against the machine's measured limits (JSON)
  slurm      deploy `serve` on a Slurm cluster: submit, status, endpoint, logs, cancel, list
  api-keys   the API keys of many users, hashed, with per-key limits (add, list, remove)
  keys       make the CURVE keys that encrypt and authenticate the replica links (keys generate)
  sweep      test-time-compute experiments: run a spec's grid against a server (resumable), report
)";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  std::string command = argv[1];
  if (command == "complete") return ponder::apps::run_complete(argc - 2, argv + 2);
  if (command == "generate") return ponder::apps::run_generate(argc - 2, argv + 2);
  if (command == "tokenize") return ponder::apps::run_tokenize(argc - 2, argv + 2);
  if (command == "worker") return ponder::apps::run_worker(argc - 2, argv + 2);
  if (command == "serve") return ponder::apps::run_serve(argc - 2, argv + 2);
  if (command == "replica") return ponder::apps::run_replica(argc - 2, argv + 2);
  if (command == "slurm") return ponder::apps::run_slurm(argc - 2, argv + 2);
  if (command == "sweep") return ponder::apps::run_sweep(argc - 2, argv + 2);
  if (command == "bench") return ponder::apps::run_bench(argc - 2, argv + 2);
  if (command == "api-keys") return ponder::apps::run_api_keys(argc - 2, argv + 2);
  if (command == "keys") return ponder::apps::run_keys(argc - 2, argv + 2);
  std::fprintf(stderr, "ponder: unknown command '%s'\n%s", command.c_str(), kUsage);
  return 2;
}
