// Offline throughput: N requests with prompt and output lengths drawn from a fixed-seed uniform
// distribution, all enqueued at once into the engine (continuous batching, chunked prefill,
// prefix cache, preemption); reports output and total tokens/s and the batch size over time. Then
// n = 16 samples of one prompt against 16 separate requests for the same prompt.
#include "apps/bench_offline.h"

#include <chrono>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "common/check.h"
#include "common/log.h"
#include "worker/backend/cpu/cpu_backend.h"
#include "worker/engine/engine.h"
#include "worker/model/decoder_model.h"

namespace ponder::apps {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Range {
  int64_t lo = 0, hi = 0;
};

Expected<Range> get_range(const Args& args, const char* name, Range fallback) {
  PONDER_ASSIGN_OR_RETURN(auto v, args.get_int_list(name));
  if (v.empty()) return fallback;
  if (v.size() != 2 || v[0] < 1 || v[1] < v[0])
    return error(StatusCode::kInvalidArgument, "--%s takes LO,HI with 1 <= LO <= HI", name);
  return Range{v[0], v[1]};
}

struct RunStats {
  double seconds = 0;
  int64_t prompt_tokens = 0, output_tokens = 0, processed = 0;
  json batch_over_time = json::array();
};

// Runs `requests` to completion; samples the batch size every `sample_every` steps.
Expected<RunStats> run(worker::Engine& engine, const std::vector<worker::EngineRequest>& requests,
                       int64_t sample_every) {
  RunStats st;
  const auto before = engine.stats();
  auto t0 = Clock::now();
  for (const auto& r : requests) {
    st.prompt_tokens += static_cast<int64_t>(r.prompt.size()) * 1;
    PONDER_RETURN_IF_ERROR(status_of(engine.enqueue(r, [&st](const worker::EngineOutput& out) {
      st.output_tokens += static_cast<int64_t>(out.tokens.size());
    })));
  }
  int64_t step = 0;
  while (!engine.idle()) {
    PONDER_RETURN_IF_ERROR(status_of(engine.step()));
    if (sample_every > 0 && ++step % sample_every == 0) {
      const auto s = engine.stats();
      st.batch_over_time.push_back({{"t", std::chrono::duration<double>(Clock::now() - t0).count()},
                                    {"sequences", s.last_step_sequences},
                                    {"tokens", s.last_step_tokens},
                                    {"running", s.running},
                                    {"waiting", s.waiting},
                                    {"kv_blocks_used", s.kv_blocks_used}});
    }
  }
  st.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  st.processed = engine.stats().tokens_processed - before.tokens_processed;
  return st;
}

}  // namespace

Status bench_offline(const Args& args) {
  PONDER_ASSIGN_OR_RETURN(std::string dir, args.require("model"));
  PONDER_ASSIGN_OR_RETURN(int64_t n_requests, args.get_int("requests", 256));
  PONDER_ASSIGN_OR_RETURN(Range prompt, get_range(args, "prompt-range", {128, 512}));
  PONDER_ASSIGN_OR_RETURN(Range output, get_range(args, "output-range", {64, 256}));
  PONDER_ASSIGN_OR_RETURN(int64_t budget, args.get_int("token-budget", 512));
  PONDER_ASSIGN_OR_RETURN(double kv_gib, args.get_double("kv-gib", 4.0));
  PONDER_ASSIGN_OR_RETURN(int64_t threads, args.get_int("threads", 0));
  PONDER_ASSIGN_OR_RETURN(auto precision,
                          worker::parse_matmul_precision(args.get("precision").value_or("bf16")));
  if (n_requests < 1) return error(StatusCode::kInvalidArgument, "--requests must be >= 1");

  PONDER_ASSIGN_OR_RETURN(auto quantize,
                          worker::parse_weight_quant(args.get("quantize").value_or("none")));
  PONDER_ASSIGN_OR_RETURN(auto kv_dtype, worker::parse_kv_cache_dtype(
                                             args.get("kv-dtype").value_or("f32"), "--kv-dtype"));
  PONDER_ASSIGN_OR_RETURN(auto model, worker::DecoderModel::load(dir, {.quantize = quantize}));
  PONDER_ASSIGN_OR_RETURN(auto backend, worker::CpuBackend::create(
                                            {.n_threads = int(threads), .precision = precision}));
  const auto& c = model->config();
  const int64_t block_bytes = worker::KvCache::block_bytes(model->kv_cache_config(1, 16, kv_dtype));
  const int64_t n_blocks = static_cast<int64_t>(kv_gib * (1ull << 30)) / block_bytes;
  PONDER_ASSIGN_OR_RETURN(auto cache, worker::KvCache::create(model->kv_cache_config(n_blocks, 16, kv_dtype)));
  worker::LocalExecutor executor(*model, *backend, cache);
  worker::Engine engine(executor, {.token_budget = static_cast<int32_t>(budget)});

  worker::Rng rng(2024);
  auto draw = [&](Range r) { return r.lo + static_cast<int64_t>(rng.next() % (r.hi - r.lo + 1)); };
  std::vector<worker::EngineRequest> requests;
  for (int64_t i = 0; i < n_requests; ++i) {
    worker::EngineRequest r;
    r.prompt.resize(draw(prompt));
    for (auto& t : r.prompt) t = static_cast<int32_t>(rng.next() % c.vocab_size);
    r.max_tokens = draw(output);
    r.ignore_eos = true;
    r.sampling = {.temperature = 0.8f, .top_p = 0.95f, .seed = static_cast<uint64_t>(i)};
    requests.push_back(std::move(r));
  }
  PONDER_LOG(kInfo, "bench", "offline: %lld requests, %lld KV blocks (%.1f GiB), budget %lld tokens/step",
             (long long)n_requests, (long long)n_blocks, kv_gib, (long long)budget);
  PONDER_ASSIGN_OR_RETURN(RunStats main, run(engine, requests, 8));

  // n = 16 of one prompt (prefilled once, forks share its blocks) vs 16 separate requests. The
  // separate requests find the prompt in the prefix cache after the first: run them with a
  // prompt the cache has not seen.
  auto one_prompt = [&](int64_t len, uint64_t seed) { return worker::random_tokens(len, c.vocab_size, seed); };
  worker::EngineRequest fork{.prompt = one_prompt(prompt.hi, 1), .n = 16,
                             .sampling = {.temperature = 0.8f, .seed = 7},
                             .max_tokens = output.lo, .ignore_eos = true};
  PONDER_ASSIGN_OR_RETURN(RunStats forked, run(engine, {fork}, 0));
  std::vector<worker::EngineRequest> separate(16, fork);
  const auto sep_prompt = one_prompt(prompt.hi, 2);
  for (int i = 0; i < 16; ++i) {
    separate[i].n = 1;
    separate[i].prompt = sep_prompt;
    separate[i].sampling.seed = 7 + i;
  }
  PONDER_ASSIGN_OR_RETURN(RunStats apart, run(engine, separate, 0));

  const auto s = engine.stats();
  json out = {
      {"model", dir},
      {"params", c.total_params()},
      {"precision", worker::matmul_precision_name(backend->precision())},
      {"quantize", worker::weight_quant_name(quantize)},
      {"kv_cache_dtype", std::string(worker::dtype_name(kv_dtype))},
      {"threads", backend->n_threads()},
      {"requests", n_requests},
      {"prompt_range", {prompt.lo, prompt.hi}},
      {"output_range", {output.lo, output.hi}},
      {"token_budget", budget},
      {"kv_blocks", n_blocks},
      {"seconds", main.seconds},
      {"prompt_tokens", main.prompt_tokens},
      {"output_tokens", main.output_tokens},
      {"output_tokens_per_s", main.output_tokens / main.seconds},
      {"total_tokens_per_s", (main.prompt_tokens + main.output_tokens) / main.seconds},
      {"tokens_processed", main.processed},
      {"preemptions", s.preemptions},
      {"prefix_cache_hits", s.prefix_cache_hits},
      {"batch_over_time", main.batch_over_time},
      {"n16_one_request", {{"seconds", forked.seconds}, {"tokens_processed", forked.processed},
                           {"output_tokens_per_s", forked.output_tokens / forked.seconds}}},
      {"n16_separate_requests", {{"seconds", apart.seconds}, {"tokens_processed", apart.processed},
                                 {"output_tokens_per_s", apart.output_tokens / apart.seconds}}},
  };
  std::printf("%s\n", out.dump(2).c_str());
  return {};
}

}  // namespace ponder::apps
