// `ponder generate`: one prompt (text or token ids) through the CPU engine; the continuation is
// streamed to stdout as it is produced, speeds go to stderr; --json prints one object instead.
#include "apps/generate_command.h"

#include <chrono>
#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "apps/args.h"
#include "common/check.h"
#include "common/log.h"
#include "worker/backend/cpu/cpu_backend.h"
#include "worker/batch_runner.h"
#include "worker/model/decoder_model.h"
#include "worker/sampler.h"

namespace ponder::apps {
namespace {

using worker::SamplingParams;

constexpr const char* kUsage = R"(usage: ponder generate --model DIR (--prompt TEXT | --prompt-ids 1,2,3) [options]

  --model DIR          Hugging Face model directory (config.json + safetensors)
  --prompt-ids LIST    prompt as comma-separated token ids
  --max-tokens N       tokens to generate (default 64)
  --temperature T      0 = greedy (default 0)
  --top-k K  --top-p P  --min-p P
  --repetition-penalty R  --presence-penalty P  --frequency-penalty F
  --seed S             sampling seed (default 0); same seed, same tokens
  --ignore-eos         keep generating past end-of-sequence tokens
  --threads N          CPU threads (default: all cores)
  --precision P        bf16 (default: bf16 weights meet bf16-rounded activations in bf16 dot
                       products, f32 accumulation) or exact (f32 activations; the reference)
  --json               print one JSON object (token ids, timings) instead of streaming
)";

struct Options {
  std::string model_dir;
  std::vector<int32_t> prompt_ids;
  int64_t max_tokens = 64;
  SamplingParams sampling;
  bool ignore_eos = false;
  bool json = false;
  int threads = 0;
  worker::MatmulPrecision precision = worker::MatmulPrecision::kBf16;
};

Expected<Options> parse_options(int argc, char** argv) {
  PONDER_ASSIGN_OR_RETURN(
      Args args, Args::parse(argc, argv, {"json", "ignore-eos", "help"},
                             {"model", "prompt", "prompt-ids", "max-tokens", "temperature",
                              "top-k", "top-p", "min-p", "repetition-penalty", "presence-penalty",
                              "frequency-penalty", "seed", "threads", "precision"}));
  Options o;
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
  SamplingParams& s = o.sampling;
  PONDER_ASSIGN_OR_RETURN(double temperature, args.get_double("temperature", 0.0));
  PONDER_ASSIGN_OR_RETURN(int64_t top_k, args.get_int("top-k", 0));
  PONDER_ASSIGN_OR_RETURN(double top_p, args.get_double("top-p", 1.0));
  PONDER_ASSIGN_OR_RETURN(double min_p, args.get_double("min-p", 0.0));
  PONDER_ASSIGN_OR_RETURN(double rep, args.get_double("repetition-penalty", 1.0));
  PONDER_ASSIGN_OR_RETURN(double presence, args.get_double("presence-penalty", 0.0));
  PONDER_ASSIGN_OR_RETURN(double frequency, args.get_double("frequency-penalty", 0.0));
  PONDER_ASSIGN_OR_RETURN(int64_t seed, args.get_int("seed", 0));
  PONDER_ASSIGN_OR_RETURN(int64_t threads, args.get_int("threads", 0));
  s.temperature = static_cast<float>(temperature);
  s.top_k = static_cast<int32_t>(top_k);
  s.top_p = static_cast<float>(top_p);
  s.min_p = static_cast<float>(min_p);
  s.repetition_penalty = static_cast<float>(rep);
  s.presence_penalty = static_cast<float>(presence);
  s.frequency_penalty = static_cast<float>(frequency);
  s.seed = static_cast<uint64_t>(seed);
  PONDER_RETURN_IF_ERROR(s.validate());
  o.threads = static_cast<int>(threads);
  PONDER_ASSIGN_OR_RETURN(o.precision, worker::parse_matmul_precision(args.get("precision").value_or("bf16")));
  o.ignore_eos = args.has("ignore-eos");
  o.json = args.has("json");
  return o;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

Status generate(const Options& o) {
  PONDER_ASSIGN_OR_RETURN(auto model, worker::DecoderModel::load(o.model_dir));
  PONDER_ASSIGN_OR_RETURN(auto backend, worker::CpuBackend::create({.n_threads = o.threads, .precision = o.precision}));
  const auto& config = model->config();
  const int64_t total = static_cast<int64_t>(o.prompt_ids.size()) + o.max_tokens;
  if (total > config.max_position_embeddings)
    return error(StatusCode::kInvalidArgument,
                 "prompt (%zu tokens) + --max-tokens (%lld) exceeds the model's context of %lld",
                 o.prompt_ids.size(), (long long)o.max_tokens,
                 (long long)config.max_position_embeddings);
  PONDER_ASSIGN_OR_RETURN(auto cache, worker::KvCache::create(model->kv_cache_config(total / 16 + 1)));
  PONDER_LOG(kInfo, "generate", "%s: %s, %lld layers, %.1f M parameters, %s kernels, %d threads",
             o.model_dir.c_str(), config.architecture.c_str(), (long long)config.n_layers,
             config.total_params() / 1e6, backend->isa(), backend->n_threads());

  worker::BatchRunner runner(*model, *backend, cache);
  worker::Sampler sampler(o.sampling);
  worker::SequenceState seq{.tokens = o.prompt_ids};
  sampler.set_prompt(o.prompt_ids);
  worker::SequenceState* batch[] = {&seq};
  std::vector<float> logits;
  std::vector<int32_t> generated;
  std::string finish_reason = "length";

  auto t0 = std::chrono::steady_clock::now();
  double prefill_s = 0;
  for (int64_t i = 0; i < o.max_tokens; ++i) {
    PONDER_RETURN_IF_ERROR(runner.step(batch, logits));
    if (i == 0) prefill_s = seconds_since(t0);
    worker::SampleResult r = sampler.sample(logits);
    sampler.accept(r.token);
    generated.push_back(r.token);
    seq.tokens.push_back(r.token);
    if (!o.json) {
      std::printf("%s%d", i ? " " : "", r.token);
      std::fflush(stdout);
    }
    bool eos = std::find(config.eos_token_ids.begin(), config.eos_token_ids.end(), r.token) !=
               config.eos_token_ids.end();
    if (eos && !o.ignore_eos) {
      finish_reason = "stop";
      break;
    }
  }
  double total_s = seconds_since(t0);
  double decode_s = total_s - prefill_s;
  double prefill_tps = o.prompt_ids.size() / prefill_s;
  double decode_tps = generated.size() > 1 ? (generated.size() - 1) / decode_s : 0.0;
  if (o.json) {
    nlohmann::json out = {
        {"model", o.model_dir},
        {"prompt_ids", o.prompt_ids},
        {"token_ids", generated},
        {"finish_reason", finish_reason},
        {"usage", {{"prompt_tokens", o.prompt_ids.size()}, {"completion_tokens", generated.size()}}},
        {"timings", {{"prefill_tokens_per_s", prefill_tps}, {"decode_tokens_per_s", decode_tps}}}};
    std::printf("%s\n", out.dump().c_str());
  } else {
    std::printf("\n");
  }
  std::fprintf(stderr, "prefill: %zu tokens, %.1f tokens/s; decode: %zu tokens, %.1f tokens/s\n",
               o.prompt_ids.size(), prefill_tps, generated.size(), decode_tps);
  return {};
}

}  // namespace

int run_generate(int argc, char** argv) {
  for (int i = 0; i < argc; ++i) {
    if (std::string(argv[i]) == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
  }
  auto options = parse_options(argc, argv);
  Status st = options ? generate(*options) : options.error();
  if (!st.ok()) {
    std::fprintf(stderr, "ponder generate: %s\n", st.message().c_str());
    return st.code() == StatusCode::kInvalidArgument || st.code() == StatusCode::kNotFound ? 2 : 1;
  }
  return 0;
}

}  // namespace ponder::apps
