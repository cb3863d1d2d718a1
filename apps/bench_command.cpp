// `ponder bench --model DIR`: prints one JSON object with prefill tokens/s (several prompt
// lengths), decode tokens/s (several batch sizes), peak RSS, and each figure as a fraction of the
// physical limit measured in the same run (read bandwidth for decode, FMA peak for prefill).
#include "apps/bench_command.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include <nlohmann/json.hpp>

#include "apps/args.h"
#include "apps/bench_distributed.h"
#include "apps/bench_offline.h"
#include "apps/mpirun_launch.h"
#include "common/process_env.h"
#include "bench/roofline.h"
#include "common/check.h"
#include "common/log.h"
#include "worker/backend/cpu/cpu_backend.h"
#include "worker/batch_runner.h"
#include "worker/model/decoder_model.h"
#include "worker/sampler.h"

namespace ponder::apps {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kUsage = R"(usage: ponder bench --model DIR [options]

  --prompt-lengths LIST  prefill prompt lengths (default 128,512)
  --batches LIST         decode batch sizes (default 1,4,16)
  --decode-steps N       decode steps timed per batch size (default 32)
  --threads N            CPU threads (default: all cores)
  --precision P          exact (f32 activations) or bf16 (bf16 dot products for bf16 weights;
                         default)
  --tp N --pp N          benchmark a tensor/pipeline-parallel replica on tp × pp ranks (started
                         with mpirun) and report the bytes each rank communicated per token
  --ep N                 with expert parallelism too (MoE models: tp × pp × ep ranks); the
                         all-to-all bytes per token per rank beside their expected count
  --offline              serving throughput instead: --requests N (256) with lengths drawn from
                         --prompt-range LO,HI (128,512) and --output-range LO,HI (64,256),
                         all at once through the engine (--token-budget 512, --kv-gib 4); then
                         n=16 samples of one prompt against 16 separate requests
  --compare-memory       also load the weights on 4 KiB pages and time decode at batch 1
  --kv-dtype D           f32 (default) or bf16: the KV cache's element type (bf16: half the bytes)
  --quantize Q           none (default) or int8: matmul weights quantized at load to int8 with
                         per-row scales (activations per block of 32), on the CPU
Prints one JSON object on stdout.
)";

double seconds(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

int64_t peak_rss_bytes() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<int64_t>(ru.ru_maxrss) * 1024;
}

struct Bench {
  worker::DecoderModel& model;
  worker::Backend& backend;
  worker::DType kv_dtype = worker::DType::kF32;

  // Seconds to prefill one prompt of n tokens (best of 2 after a warm-up).
  Expected<double> prefill_seconds(int64_t n) {
    PONDER_ASSIGN_OR_RETURN(auto cache,
                            worker::KvCache::create(model.kv_cache_config(n / 16 + 2, 16, kv_dtype)));
    worker::BatchRunner runner(model, backend, cache);
    std::vector<float> logits;
    double best = 1e30;
    for (int rep = 0; rep < 3; ++rep) {
      worker::SequenceState seq{.tokens = worker::random_tokens(n, model.config().vocab_size, rep)};
      worker::SequenceState* batch[] = {&seq};
      auto t0 = Clock::now();
      PONDER_RETURN_IF_ERROR(runner.step(batch, logits));
      if (rep > 0) best = std::min(best, seconds(t0));
      runner.release(seq);
    }
    return best;
  }

  // Seconds per decode step for `batch` sequences with 16-token prompts.
  Expected<double> decode_step_seconds(int64_t batch, int64_t steps) {
    const int64_t prompt = 16, per_seq = (prompt + steps + 2 + 15) / 16;
    PONDER_ASSIGN_OR_RETURN(
        auto cache, worker::KvCache::create(model.kv_cache_config(batch * per_seq, 16, kv_dtype)));
    worker::BatchRunner runner(model, backend, cache);
    std::vector<worker::SequenceState> seqs(batch);
    std::vector<worker::SequenceState*> ptrs;
    for (int64_t i = 0; i < batch; ++i) {
      seqs[i].tokens = worker::random_tokens(prompt, model.config().vocab_size, 100 + i);
      ptrs.push_back(&seqs[i]);
    }
    std::vector<float> logits;
    PONDER_RETURN_IF_ERROR(runner.step(ptrs, logits));  // prefill, not timed
    const int64_t vocab = model.config().vocab_size;
    auto append_argmax = [&] {
      for (int64_t i = 0; i < batch; ++i) {
        const float* row = logits.data() + i * vocab;
        seqs[i].tokens.push_back(static_cast<int32_t>(std::max_element(row, row + vocab) - row));
      }
    };
    append_argmax();
    PONDER_RETURN_IF_ERROR(runner.step(ptrs, logits));  // warm-up decode step
    append_argmax();
    auto t0 = Clock::now();
    for (int64_t s = 0; s < steps; ++s) {
      PONDER_RETURN_IF_ERROR(runner.step(ptrs, logits));
      append_argmax();
    }
    return seconds(t0) / steps;
  }
};

Status bench(const Args& args) {
  PONDER_ASSIGN_OR_RETURN(std::string dir, args.require("model"));
  PONDER_ASSIGN_OR_RETURN(auto prompt_lengths, args.get_int_list("prompt-lengths"));
  if (prompt_lengths.empty()) prompt_lengths = {128, 512};
  PONDER_ASSIGN_OR_RETURN(auto batches, args.get_int_list("batches"));
  if (batches.empty()) batches = {1, 4, 16};
  PONDER_ASSIGN_OR_RETURN(int64_t steps, args.get_int("decode-steps", 32));
  PONDER_ASSIGN_OR_RETURN(int64_t threads_arg, args.get_int("threads", 0));
  if (steps < 1) return error(StatusCode::kInvalidArgument, "--decode-steps must be >= 1");

  PONDER_ASSIGN_OR_RETURN(auto precision, worker::parse_matmul_precision(args.get("precision").value_or("bf16")));
  const std::string kv_name = args.get("kv-dtype").value_or("f32");
  PONDER_ASSIGN_OR_RETURN(const worker::DType kv_dtype,
                          worker::parse_kv_cache_dtype(kv_name, "--kv-dtype"));
  PONDER_ASSIGN_OR_RETURN(auto quantize,
                          worker::parse_weight_quant(args.get("quantize").value_or("none")));
  PONDER_ASSIGN_OR_RETURN(auto backend, worker::CpuBackend::create(
                                            {.n_threads = int(threads_arg), .precision = precision}));
  const int threads = backend->n_threads();
  // Reading the checkpoint's files into fresh memory, as fast as this machine gives — the
  // loader's limit (it preads its slices on every core into huge pages). First, so that both
  // see the same page cache.
  std::vector<std::string> files;
  if (std::filesystem::is_directory(dir))
    for (const auto& e : std::filesystem::directory_iterator(dir))
      if (e.path().extension() == ".safetensors") files.push_back(e.path().string());
  const double file_read_bps = bench::file_read_bandwidth(files, threads);
  auto t_load = Clock::now();
  PONDER_ASSIGN_OR_RETURN(auto model, worker::DecoderModel::load(
                                          dir, {.huge_pages = true, .quantize = quantize}));
  double load_s = seconds(t_load);
  const auto& c = model->config();
  PONDER_LOG(kInfo, "bench", "%s loaded in %.2f s; probing the machine", dir.c_str(), load_s);

  // Physical limits, measured now, on this machine.
  json probes;
  {
    const size_t probe_bytes = size_t{1} << 30;
    PONDER_ASSIGN_OR_RETURN(auto huge, worker::HostRegion::allocate(probe_bytes, true));
    PONDER_ASSIGN_OR_RETURN(auto small, worker::HostRegion::allocate(probe_bytes, false));
    std::memset(huge.data(), 1, probe_bytes);
    std::memset(small.data(), 1, probe_bytes);
    probes["read_bw_hugepages_GBps"] = bench::read_bandwidth(huge.data(), probe_bytes, threads) / 1e9;
    probes["read_bw_hugepages_1thread_GBps"] = bench::read_bandwidth(huge.data(), probe_bytes, 1) / 1e9;
    probes["read_bw_4k_pages_GBps"] = bench::read_bandwidth(small.data(), probe_bytes, threads) / 1e9;
  }
  {
    // The largest safetensors file of the model, mapped read-only (page cache).
    std::string biggest;
    uintmax_t size = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
      if (e.path().extension() == ".safetensors" && e.file_size() > size) {
        size = e.file_size();
        biggest = e.path().string();
      }
    }
    PONDER_ASSIGN_OR_RETURN(auto mapped, worker::HostRegion::map_file(biggest));
    bench::read_bandwidth(mapped.data(), mapped.size(), threads, 1);  // fault the pages in
    probes["read_bw_file_mmap_GBps"] = bench::read_bandwidth(mapped.data(), mapped.size(), threads) / 1e9;
    probes["file_mmap_probe_bytes"] = mapped.size();
    probes["file_read_GBps"] = file_read_bps / 1e9;
  }
  const double fma_peak = bench::fma_peak_flops(threads);
  const double bf16_peak = bench::bf16_dot_peak_flops(threads);
  probes["fma_peak_f32_GFLOPs"] = fma_peak / 1e9;
  probes["bf16_dot_peak_GFLOPs"] = bf16_peak / 1e9;

  Bench b{*model, *backend, kv_dtype};
  const double matmul_flops_per_token = 2.0 * static_cast<double>(c.matmul_params());
  json prefill = json::array();
  for (int32_t n : prompt_lengths) {
    if (n < 1 || n > c.max_position_embeddings)
      return error(StatusCode::kInvalidArgument, "--prompt-lengths: %d is outside [1, %lld]", n,
                   (long long)c.max_position_embeddings);
    PONDER_ASSIGN_OR_RETURN(double s, b.prefill_seconds(n));
    double flops = matmul_flops_per_token * n / s;
    prefill.push_back({{"prompt_tokens", n},
                       {"tokens_per_s", n / s},
                       {"matmul_GFLOPs", flops / 1e9},
                       {"fraction_of_fma_peak", flops / fma_peak}});
  }

  // Bandwidth drifts on a shared VM: probe again right before the decode runs and take the best.
  {
    const size_t probe_bytes = size_t{1} << 30;
    PONDER_ASSIGN_OR_RETURN(auto huge, worker::HostRegion::allocate(probe_bytes, true));
    std::memset(huge.data(), 1, probe_bytes);
    const double again = bench::read_bandwidth(huge.data(), probe_bytes, threads) / 1e9;
    probes["read_bw_hugepages_before_decode_GBps"] = again;
  }
  const double bw = std::max(probes["read_bw_hugepages_GBps"].get<double>(),
                             probes["read_bw_hugepages_before_decode_GBps"].get<double>()) * 1e9;
  const double weight_bytes = static_cast<double>(model->weights().matmul_bytes(c));
  auto decode_entry = [&](int64_t batch, double step_s) {
    double roofline_step_s = weight_bytes / bw;  // weights are read once per step
    return json{{"batch", batch},
                {"tokens_per_s", batch / step_s},
                {"step_ms", step_s * 1e3},
                {"weight_bytes_per_step", weight_bytes},
                {"fraction_of_bandwidth_roofline", roofline_step_s / step_s},
                {"overhead_ms_per_step", (step_s - roofline_step_s) * 1e3}};
  };
  json decode = json::array();
  double batch1_tps = 0;
  for (int32_t batch : batches) {
    if (batch < 1) return error(StatusCode::kInvalidArgument, "--batches: %d must be >= 1", batch);
    PONDER_ASSIGN_OR_RETURN(double step_s, b.decode_step_seconds(batch, steps));
    if (batch == 1) batch1_tps = 1.0 / step_s;
    json entry = decode_entry(batch, step_s);
    if (batch1_tps > 0) entry["speedup_over_batch1"] = batch / step_s / batch1_tps;
    decode.push_back(entry);
  }

  json out = {{"model", dir},
              {"architecture", c.architecture},
              {"dtype", std::string(worker::dtype_name(c.dtype))},
              {"quantize", worker::weight_quant_name(quantize)},
              {"params", c.total_params()},
              {"active_params_per_token", c.matmul_params()},
              {"kv_cache_dtype", kv_name},
              {"kv_cache_bytes_per_token",
               worker::KvCache::block_bytes(model->kv_cache_config(1, 16, kv_dtype)) / 16},
              {"isa", backend->isa()},
              {"precision", worker::matmul_precision_name(backend->precision())},
              {"threads", threads},
              {"load_seconds", load_s},
              {"load_GBps", static_cast<double>(model->weights().bytes_read) / load_s / 1e9},
              {"load_fraction_of_file_read",
               static_cast<double>(model->weights().bytes_read) / load_s /
                   (probes["file_read_GBps"].get<double>() * 1e9)},
              {"probes", probes},
              {"prefill", prefill},
              {"decode", decode}};
  if (args.has("compare-memory")) {
    model.reset();
    PONDER_ASSIGN_OR_RETURN(model, worker::DecoderModel::load(
                                       dir, {.huge_pages = false, .quantize = quantize}));
    Bench small{*model, *backend};
    PONDER_ASSIGN_OR_RETURN(double step_s, small.decode_step_seconds(1, steps));
    out["decode_4k_pages_batch1"] = decode_entry(1, step_s);
  }
  out["peak_rss_MB"] = peak_rss_bytes() / 1e6;
  std::printf("%s\n", out.dump(2).c_str());
  return {};
}

}  // namespace

int run_bench(int argc, char** argv) {
  auto args = Args::parse(argc, argv, {"help", "compare-memory", "offline"},
                          {"model", "prompt-lengths", "batches", "decode-steps", "threads",
                           "precision", "kv-dtype", "quantize", "tp", "pp", "ep", "requests", "prompt-range", "output-range",
                           "token-budget", "kv-gib"});
  if (args && args->has("help")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  Status st;
  if (!args) {
    st = args.error();
  } else {
    auto tp = args->get_int("tp", 1);
    auto pp = args->get_int("pp", 1);
    auto ep = args->get_int("ep", 1);
    if (!tp || !pp || !ep) {
      st = !tp ? tp.error() : !pp ? pp.error() : ep.error();
    } else if (ProcessEnv::read().ompi_world_size) {
      st = bench_distributed(*args, &argc, &argv);
    } else if (args->has("offline")) {
      st = bench_offline(*args);
    } else if (*tp * *pp * *ep > 1) {
      st = exec_mpirun(static_cast<int>(*tp * *pp * *ep), "bench", argc, argv);
    } else {
      st = bench(*args);
    }
  }
  if (!st.ok()) {
    std::fprintf(stderr, "ponder bench: %s\n", st.message().c_str());
    return 2;
  }
  return 0;
}

}  // namespace ponder::apps
