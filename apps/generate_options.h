// GenerateOptions: the options of `ponder generate` and `ponder worker` (the same job, on one
// process or across MPI ranks), their parsing and help text, and the printer both use for output.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "worker/backend/backend_factory.h"
#include "coordinator/text/chat_template.h"
#include "coordinator/text/reasoning_parser.h"
#include "coordinator/text/tokenizer.h"
#include "worker/engine/engine.h"
#include "worker/sampler.h"

namespace ponder::apps {

extern const char* const kGenerateUsage;
inline constexpr int64_t kDefaultRawMaxTokens = 64;  // --max-tokens without --chat

struct GenerateOptions {
  std::string model_dir;
  std::vector<int32_t> prompt_ids;  // --prompt-ids, or filled from the text by prepare_prompt()
  std::optional<std::string> prompt_text;
  bool chat = false;                // render --prompt through the model's chat template
  std::string system;               // optional system message with --chat
  nlohmann::ordered_json chat_template_kwargs = nlohmann::ordered_json::object();
  int64_t max_thinking_tokens = -1;
  int64_t min_thinking_tokens = 0;
  int32_t extend_thinking = 0;
  // --max-tokens; unset: with --chat until the end of the turn or a full context window (as
  // `ponder serve`'s chat completions), else kDefaultRawMaxTokens. prepare_prompt() resolves it.
  std::optional<int64_t> max_tokens;
  worker::SamplingParams sampling{.temperature = 0.0f};
  bool ignore_eos = false;
  bool json = false;
  worker::BackendKind backend = worker::BackendKind::kCpu;
  int threads = 0;
  worker::MatmulPrecision precision = worker::MatmulPrecision::kBf16;
  worker::WeightQuant quantize = worker::WeightQuant::kNone;  // --quantize int8 (CPU)
  worker::DType kv_dtype = worker::DType::kF32;               // --kv-cache-dtype bf16
  int tp = 1;
  int pp = 1;
  int ep = 1;  // expert-parallel columns per stage (MoE models)
  std::vector<int64_t> stage_layers;
  std::chrono::milliseconds timeout{60'000};
  int ranks_per_replica() const { return tp * pp * ep; }
};

class Args;

// The sampling options (--temperature, --top-k, --top-p, --min-p, the penalties, --seed),
// validated; shared by every command that samples.
Expected<worker::SamplingParams> parse_sampling(const Args& args);
// `names` plus the option names parse_sampling reads, for Args::parse.
std::set<std::string> with_sampling_options(std::set<std::string> names);

// One user prompt as the model should see it: through the chat template when `chat_template` is
// given (the template writes BOS itself), else the raw text with BOS when the tokenizer asks.
Expected<std::vector<int32_t>> encode_user_prompt(const text::Tokenizer& tokenizer,
                                                  const text::ChatTemplate* chat_template,
                                                  const std::string& prompt,
                                                  const std::string& system = "",
                                                  const nlohmann::ordered_json& kwargs = nullptr,
                                                  std::string* rendered = nullptr);

// argv excludes the program and subcommand. Returns kCancelled after printing help for --help.
Expected<GenerateOptions> parse_generate_options(int argc, char** argv);

// What the text options turn into: prompt ids, the tokenizer (when the model has one), and the
// thinking set-up (delimiters, whether the prompt leaves the reasoning block open).
struct PreparedPrompt {
  std::vector<int32_t> ids;
  std::optional<text::Tokenizer> tokenizer;
  std::optional<text::ReasoningConfig> reasoning;  // set when the vocabulary has <think>/</think>
  std::vector<int32_t> think_start, think_end, wait_tokens;
  bool starts_in_thinking = false;
  int64_t max_tokens = 0;  // options.max_tokens, or its default for this prompt and model
};

// Tokenizes --prompt (rendering the chat template with --chat); with --prompt-ids, loads the
// tokenizer too when the model has one, to print text. Resolves the default --max-tokens against
// the model's context window.
Expected<PreparedPrompt> prepare_prompt(const GenerateOptions& options);

// Streams the continuation to stdout as it comes — text when there is a tokenizer (thinking and
// answer under their own headings with --chat), token ids otherwise — or collects it for --json;
// then prints the summary: timings to stderr, and with --json one object to stdout.
class GenerationPrinter {
 public:
  GenerationPrinter(const GenerateOptions& options, const PreparedPrompt& prompt);
  void start();               // before the prompt is run
  void token(int32_t token);  // each generated token, in order
  void finish(const std::string& finish_reason, const std::string& layout);

 private:
  using Clock = std::chrono::steady_clock;
  void print(const text::ReasoningSplit& delta);
  const GenerateOptions& options_;
  const PreparedPrompt& prompt_;
  std::optional<text::StreamDecoder> decoder_;
  std::optional<text::ReasoningParser> parser_;
  std::string text_;
  text::ReasoningSplit all_;
  bool said_thinking_ = false, said_answer_ = false;
  std::vector<int32_t> generated_;
  Clock::time_point start_, first_token_;
};

// Runs the options' prompt through `engine` (on the replica leader), streaming tokens with a
// GenerationPrinter; `layout` labels the JSON output.
Status run_generation(worker::Engine& engine, const GenerateOptions& options,
                      const PreparedPrompt& prompt, const std::string& layout);

// Engine options for a prepared prompt (thinking delimiters, token bytes for stop strings).
worker::EngineOptions engine_options(const PreparedPrompt& prompt);

// Prints "ponder <command>: message" and maps the status to an exit code.
int report_failure(const char* command, const Status& status);
// The end of an MPI rank's command: 0 when `status` is ok; otherwise reports it and exits at once
// (a failed rank must not wait in MPI_Finalize for peers that may be gone).
int finish_rank(const char* command, const Status& status);

}  // namespace ponder::apps
