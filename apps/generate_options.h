// GenerateOptions: the options of `ponder generate` and `ponder worker` (the same job, on one
// process or across MPI ranks), their parsing and help text, and the printer both use for output.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "worker/backend/cpu/cpu_backend.h"
#include "worker/engine/engine.h"
#include "worker/sampler.h"

namespace ponder::apps {

extern const char* const kGenerateUsage;

struct GenerateOptions {
  std::string model_dir;
  std::vector<int32_t> prompt_ids;
  int64_t max_tokens = 64;
  worker::SamplingParams sampling{.temperature = 0.0f};
  bool ignore_eos = false;
  bool json = false;
  int threads = 0;
  worker::MatmulPrecision precision = worker::MatmulPrecision::kBf16;
  int tp = 1;
  int pp = 1;
  std::vector<int64_t> stage_layers;
  std::chrono::milliseconds timeout{60'000};
};

// argv excludes the program and subcommand. Returns kCancelled after printing help for --help.
Expected<GenerateOptions> parse_generate_options(int argc, char** argv);

// Streams generated tokens to stdout as they come (or collects them for --json) and prints the
// summary: timings to stderr, and with --json one object to stdout.
class GenerationPrinter {
 public:
  explicit GenerationPrinter(const GenerateOptions& options);
  void start();               // before the prompt is run
  void token(int32_t token);  // each generated token, in order
  void finish(const std::string& finish_reason, const std::string& layout);

 private:
  using Clock = std::chrono::steady_clock;
  const GenerateOptions& options_;
  std::vector<int32_t> generated_;
  Clock::time_point start_, first_token_;
};

// Runs the options' prompt through `engine` (on the replica leader), streaming tokens with a
// GenerationPrinter; `layout` labels the JSON output.
Status run_generation(worker::Engine& engine, const GenerateOptions& options,
                      const std::string& layout);

// Prints "ponder <command>: message" and maps the status to an exit code.
int report_failure(const char* command, const Status& status);

}  // namespace ponder::apps
