// The sweep runner: a spec's grid over its problems against one OpenAI-compatible server, one
// chat request per problem and point (n = samples, one seed: the samples share one prefill),
// `concurrency` requests in flight, results graded offline and written to the results store
// as each request finishes. A rerun of the same command requests only what is not `ok` yet.
// SIGINT/SIGTERM: no new requests, those in flight finish and are stored, then exit; a second
// signal abandons them.
#pragma once

#include <optional>
#include <string>

#include "experiments/sweep_spec.h"

namespace ponder::experiments {

struct RunOptions {
  std::string out_dir;            // DIR: results.sqlite, serve.log
  std::string target_url;         // --target: overrides the spec's target
  std::string api_key_file;       // --api-key-file: overrides target.api_key_file
  std::optional<int64_t> concurrency;  // --concurrency: overrides the spec's
  bool allow_spec_change = false;
  bool dry_run = false;
  std::string ponder_binary;  // started for `target: serve:`
  std::string source_dir;     // the ponder source tree: git revision, bundled model
  std::string tasks_dir;      // the suites' split files
  std::optional<std::string> slurm_job_id, slurm_job_nodelist;
};

enum class RunOutcome { kComplete, kSomeFailed, kInterrupted, kError };

// Validates `target.serve` keys before anything starts; set by the command (apps/), which
// knows ponder serve's configuration. Returns an error naming the key.
using ServeKeyCheck = Status (*)(const std::string& key, const std::string& value,
                                 const std::string& where);

// Runs (or, with dry_run, prints) the sweep. Progress and errors go to stderr; the dry-run
// listing and the final summary to stdout.
RunOutcome run_sweep(const SweepSpec& spec, const std::string& spec_path, const RunOptions& options,
                     ServeKeyCheck check_serve_key);

}  // namespace ponder::experiments
