// Option parsing and output shared by `ponder generate` and `ponder worker`.
#include "apps/generate_options.h"

#include <cstdio>

#include <nlohmann/json.hpp>

#include "apps/args.h"
#include "common/check.h"

namespace ponder::apps {

const char* const kGenerateUsage = R"(usage: ponder generate --model DIR --prompt-ids 1,2,3 [options]
       mpirun -np N ponder worker --model DIR --prompt-ids 1,2,3 --tp T --pp P [options]

  --model DIR          Hugging Face model directory (config.json + safetensors)
  --prompt-ids LIST    prompt as comma-separated token ids
  --max-tokens N       tokens to generate (default 64)
  --temperature T      0 = greedy (default 0)
  --top-k K  --top-p P  --min-p P
  --repetition-penalty R  --presence-penalty P  --frequency-penalty F
  --seed S             sampling seed (default 0); same seed, same tokens
  --ignore-eos         keep generating past end-of-sequence tokens
  --threads N          CPU threads per rank (default: all cores; 1 per rank under mpirun)
  --precision P        bf16 (default: bf16 weights meet bf16-rounded activations in bf16 dot
                       products, f32 accumulation) or exact (f32 activations; the reference)
  --tp N  --pp N       tensor- and pipeline-parallel ranks (generate starts N = tp × pp ranks
                       with mpirun itself; worker runs inside an mpirun you started)
  --stage-layers LIST  layers per pipeline stage, e.g. 2,1,1 (default: even split)
  --timeout-ms MS      deadline of every collective between ranks (default 60000)
  --json               print one JSON object (token ids, timings) instead of streaming
)";

Expected<GenerateOptions> parse_generate_options(int argc, char** argv) {
  PONDER_ASSIGN_OR_RETURN(
      Args args, Args::parse(argc, argv, {"json", "ignore-eos", "help"},
                             {"model", "prompt", "prompt-ids", "max-tokens", "temperature",
                              "top-k", "top-p", "min-p", "repetition-penalty", "presence-penalty",
                              "frequency-penalty", "seed", "threads", "precision", "tp", "pp",
                              "stage-layers", "timeout-ms"}));
  if (args.has("help")) {
    std::fputs(kGenerateUsage, stdout);
    return error(StatusCode::kCancelled, "help");
  }
  GenerateOptions o;
  PONDER_ASSIGN_OR_RETURN(o.model_dir, args.require("model"));
  if (args.has("prompt"))
    return error(StatusCode::kInvalidArgument,
                 "--prompt needs the tokenizer, which is not built into this ponder yet; "
                 "use --prompt-ids");
  PONDER_ASSIGN_OR_RETURN(o.prompt_ids, args.get_int_list("prompt-ids"));
  if (o.prompt_ids.empty())
    return error(StatusCode::kInvalidArgument, "give a prompt with --prompt-ids 1,2,3");
  PONDER_ASSIGN_OR_RETURN(o.max_tokens, args.get_int("max-tokens", 64));
  if (o.max_tokens < 1) return error(StatusCode::kInvalidArgument, "--max-tokens must be >= 1");
  worker::SamplingParams& s = o.sampling;
  PONDER_ASSIGN_OR_RETURN(double temperature, args.get_double("temperature", 0.0));
  PONDER_ASSIGN_OR_RETURN(int64_t top_k, args.get_int("top-k", 0));
  PONDER_ASSIGN_OR_RETURN(double top_p, args.get_double("top-p", 1.0));
  PONDER_ASSIGN_OR_RETURN(double min_p, args.get_double("min-p", 0.0));
  PONDER_ASSIGN_OR_RETURN(double rep, args.get_double("repetition-penalty", 1.0));
  PONDER_ASSIGN_OR_RETURN(double presence, args.get_double("presence-penalty", 0.0));
  PONDER_ASSIGN_OR_RETURN(double frequency, args.get_double("frequency-penalty", 0.0));
  PONDER_ASSIGN_OR_RETURN(int64_t seed, args.get_int("seed", 0));
  s.temperature = static_cast<float>(temperature);
  s.top_k = static_cast<int32_t>(top_k);
  s.top_p = static_cast<float>(top_p);
  s.min_p = static_cast<float>(min_p);
  s.repetition_penalty = static_cast<float>(rep);
  s.presence_penalty = static_cast<float>(presence);
  s.frequency_penalty = static_cast<float>(frequency);
  s.seed = static_cast<uint64_t>(seed);
  PONDER_RETURN_IF_ERROR(s.validate());
  PONDER_ASSIGN_OR_RETURN(int64_t threads, args.get_int("threads", 0));
  o.threads = static_cast<int>(threads);
  PONDER_ASSIGN_OR_RETURN(o.precision,
                          worker::parse_matmul_precision(args.get("precision").value_or("bf16")));
  PONDER_ASSIGN_OR_RETURN(int64_t tp, args.get_int("tp", 1));
  PONDER_ASSIGN_OR_RETURN(int64_t pp, args.get_int("pp", 1));
  if (tp < 1 || pp < 1) return error(StatusCode::kInvalidArgument, "--tp and --pp must be >= 1");
  o.tp = static_cast<int>(tp);
  o.pp = static_cast<int>(pp);
  PONDER_ASSIGN_OR_RETURN(auto stages, args.get_int_list("stage-layers"));
  o.stage_layers.assign(stages.begin(), stages.end());
  PONDER_ASSIGN_OR_RETURN(int64_t timeout, args.get_int("timeout-ms", 60000));
  if (timeout < 1) return error(StatusCode::kInvalidArgument, "--timeout-ms must be >= 1");
  o.timeout = std::chrono::milliseconds(timeout);
  o.ignore_eos = args.has("ignore-eos");
  o.json = args.has("json");
  return o;
}

GenerationPrinter::GenerationPrinter(const GenerateOptions& options) : options_(options) {}

void GenerationPrinter::start() { start_ = Clock::now(); }

void GenerationPrinter::token(int32_t token) {
  if (generated_.empty()) first_token_ = Clock::now();
  if (!options_.json) {
    std::printf("%s%d", generated_.empty() ? "" : " ", token);
    std::fflush(stdout);
  }
  generated_.push_back(token);
}

void GenerationPrinter::finish(const std::string& finish_reason, const std::string& layout) {
  auto seconds = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };
  const Clock::time_point end = Clock::now();
  const double prefill_s = seconds(first_token_ - start_);
  const double decode_s = seconds(end - first_token_);
  const size_t n_prompt = options_.prompt_ids.size();
  const double prefill_tps = n_prompt / prefill_s;
  const double decode_tps = generated_.size() > 1 ? (generated_.size() - 1) / decode_s : 0.0;
  if (options_.json) {
    nlohmann::json out = {
        {"model", options_.model_dir},
        {"layout", layout},
        {"prompt_ids", options_.prompt_ids},
        {"token_ids", generated_},
        {"finish_reason", finish_reason},
        {"usage", {{"prompt_tokens", n_prompt}, {"completion_tokens", generated_.size()}}},
        {"timings", {{"prefill_tokens_per_s", prefill_tps}, {"decode_tokens_per_s", decode_tps}}}};
    std::printf("%s\n", out.dump().c_str());
  } else {
    std::printf("\n");
  }
  std::fflush(stdout);
  std::fprintf(stderr, "prefill: %zu tokens, %.1f tokens/s; decode: %zu tokens, %.1f tokens/s\n",
               n_prompt, prefill_tps, generated_.size(), decode_tps);
}

Status run_generation(worker::Engine& engine, const GenerateOptions& o, const std::string& layout) {
  GenerationPrinter printer(o);
  std::string finish_reason;
  printer.start();
  worker::EngineRequest request{.prompt = o.prompt_ids,
                                .sampling = o.sampling,
                                .max_tokens = o.max_tokens,
                                .ignore_eos = o.ignore_eos};
  PONDER_ASSIGN_OR_RETURN(int64_t id, engine.enqueue(request, [&](const worker::EngineOutput& out) {
    for (int32_t t : out.tokens) printer.token(t);
    if (out.finished) finish_reason = out.finish_reason;
  }));
  (void)id;
  while (!engine.idle()) {
    PONDER_ASSIGN_OR_RETURN(bool worked, engine.step());
    (void)worked;
  }
  printer.finish(finish_reason, layout);
  return {};
}

int report_failure(const char* command, const Status& status) {
  if (status.code() == StatusCode::kCancelled) return 0;  // --help
  std::fprintf(stderr, "ponder %s: %s\n", command, status.message().c_str());
  return status.code() == StatusCode::kInvalidArgument || status.code() == StatusCode::kNotFound ? 2 : 1;
}

}  // namespace ponder::apps
