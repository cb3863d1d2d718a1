// Tensor/pipeline-parallel parity under real mpirun ranks: a replica of tp × pp ranks runs every
// prompt of a reference fixture as one batch (different lengths, split into micro-batches across
// stages) and must produce the fixture's 32-token greedy continuations exactly, with end-of-prompt
// logits matching both transformers and a single-rank run of the same model.
// Usage: mpi_parity FIXTURE TP PP [ep=N] [STAGE_LAYERS e.g. 2,1,1]. Exit 77 (skip) when the layout
// does not fit the model, 0 when every rank passes. With ep=N (MoE models) each stage is N
// columns of TP ranks that split the routed experts and exchange tokens by all-to-all.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "collective/mpi_communicator.h"
#include "common/strings.h"
#include "worker/batch_runner.h"
#include "worker/engine/engine.h"
#include "worker/model/architecture.h"
#include "worker/replica.h"
#include "worker/safetensors.h"
#include "tests/worker/nmse.h"

using namespace ponder;
using namespace ponder::worker;

namespace {

// The last row of fixture logits.<i>: the logits at the end of prompt i.
std::vector<float> fixture_last_logits(const std::string& dir, size_t i, int64_t vocab) {
  auto file = SafetensorsFile::open(dir + "/parity.safetensors", 0);
  for (const TensorInfo& t : (*file)->tensors()) {
    if (t.name != "logits." + std::to_string(i)) continue;
    std::vector<float> all(t.numel());
    (void)(*file)->read(t.offset, t.nbytes, all.data());
    return std::vector<float>(all.end() - vocab, all.end());
  }
  return {};
}

// Single-rank reference on this process: end-of-prompt logits of each prompt.
std::vector<std::vector<float>> single_rank_logits(const std::string& dir,
                                                   const std::vector<std::vector<int32_t>>& prompts) {
  auto model = DecoderModel::load(dir);
  auto backend = CpuBackend::create({.n_threads = 1});
  auto cache = KvCache::create((*model)->kv_cache_config(64));
  BatchRunner runner(**model, **backend, *cache);
  std::vector<std::vector<float>> out;
  for (const auto& p : prompts) {
    SequenceState seq{.tokens = p};
    SequenceState* batch[] = {&seq};
    std::vector<float> logits;
    (void)runner.step(batch, logits);
    runner.release(seq);
    out.push_back(logits);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  auto rt = collective::MpiRuntime::init(&argc, &argv);
  if (!rt || argc < 4) {
    std::fprintf(stderr, "usage: mpi_parity FIXTURE TP PP [STAGE_LAYERS]\n");
    return 2;
  }
  const std::string name = argv[1];
  const std::string dir = std::string(PONDER_TEST_DATA_DIR) + "/models/" + name;
  ReplicaOptions options{.model_dir = dir, .tp = std::atoi(argv[2]), .pp = std::atoi(argv[3]),
                         .kv_blocks = 256,
                         .backend = {.cpu = {.n_threads = 1, .precision = MatmulPrecision::kExact}},
                         .timeout = std::chrono::seconds(60)};
  int arg = 4;
  if (argc > arg && std::strncmp(argv[arg], "ep=", 3) == 0) options.ep = std::atoi(argv[arg++] + 3);
  if (argc > arg)
    for (const std::string& n : split(argv[arg], ',')) options.stage_layers.push_back(std::stoll(n));
  auto world = collective::MpiCommunicator::world();

  auto config = load_model_config(dir);
  auto layout = model_layout(*config, (*world)->size(), options.tp, options.pp, options.stage_layers,
                             options.ep);
  if (!layout) {
    if ((*world)->rank() == 0)
      std::printf("SKIP %s tp%d pp%d ep%d: %s\n", name.c_str(), options.tp, options.pp, options.ep,
                  layout.error().message().c_str());
    return 77;
  }

  auto replica = Replica::create(**world, options);
  if (!replica) {
    std::fprintf(stderr, "FAIL replica: %s\n", replica.error().to_string().c_str());
    return 1;
  }
  Replica& r = **replica;
  r.runner().capture_first_logits = true;
  nlohmann::json meta = nlohmann::json::parse(std::ifstream(dir + "/parity.json"));
  std::vector<std::vector<int32_t>> prompts = meta["prompts"].get<std::vector<std::vector<int32_t>>>();
  int failures = 0;
  if (r.is_leader()) {
    // The replica engine on the same ranks: a mixed batch (greedy and seeded n = 2 samples,
    // different lengths) must give what the engine gives on one process.
    auto engine_outputs = [&](StepExecutor& executor) {
      Engine engine(executor, {.token_budget = 16});
      std::map<std::pair<int64_t, int32_t>, std::vector<int32_t>> out;
      std::vector<int64_t> ids;
      for (size_t i = 0; i < prompts.size(); ++i) {
        EngineRequest req{.prompt = prompts[i], .n = 2,
                          .sampling = {.temperature = i % 2 ? 0.8f : 0.0f, .seed = 3 + i,
                                       .top_logprobs = 2},
                          .max_tokens = 12, .ignore_eos = true};
        auto id = engine.enqueue(req, [&out](const EngineOutput& o) {
          auto& v = out[{o.request_id, o.index}];
          v.insert(v.end(), o.tokens.begin(), o.tokens.end());
          // The alternatives come back from the sampling rank too.
          for (const auto& top : o.top_logprobs)
            for (const TokenLogprob& t : top) v.push_back(-1 - t.token);
        });
        if (!id) std::fprintf(stderr, "FAIL enqueue: %s\n", id.error().to_string().c_str());
      }
      while (!engine.idle()) {
        auto worked = engine.step();
        if (!worked) {
          std::fprintf(stderr, "FAIL engine step: %s\n", worked.error().to_string().c_str());
          break;
        }
      }
      return out;
    };
    // Greedy continuations of every prompt, batched, against transformers.
    {
      Engine engine(r, {.token_budget = 64});
      std::map<int64_t, std::vector<int32_t>> greedy;
      std::vector<int64_t> ids;
      for (const auto& p : prompts) {
        auto id = engine.enqueue({.prompt = p, .sampling = {.temperature = 0.0f}, .max_tokens = 32,
                                  .ignore_eos = true},
                                 [&](const EngineOutput& o) {
                                   auto& v = greedy[o.request_id];
                                   v.insert(v.end(), o.tokens.begin(), o.tokens.end());
                                 });
        ids.push_back(id ? *id : -1);
      }
      while (!engine.idle())
        if (!engine.step()) break;
      for (size_t i = 0; i < prompts.size(); ++i) {
        if (greedy[ids[i]] != meta["greedy"][i].get<std::vector<int32_t>>()) {
          std::fprintf(stderr, "FAIL %s tp%d pp%d ep%d prompt %zu: greedy continuation differs\n",
                       name.c_str(), options.tp, options.pp, options.ep, i);
          ++failures;
        }
      }
    }
    auto distributed = engine_outputs(r);
    auto model1 = DecoderModel::load(dir);
    auto backend1 = CpuBackend::create({.n_threads = 1, .precision = MatmulPrecision::kExact});
    auto cache1 = KvCache::create((*model1)->kv_cache_config(256));
    LocalExecutor local(**model1, **backend1, *cache1);
    auto single = engine_outputs(local);
    if (distributed != single || distributed.size() != prompts.size() * 2) {
      std::fprintf(stderr, "FAIL %s tp%d pp%d ep%d: engine outputs differ from one process\n",
                   name.c_str(), options.tp, options.pp, options.ep);
      ++failures;
    }
    Status st = r.shutdown();
    if (!st.ok()) ++failures;
  } else {
    Status st = r.serve();
    if (!st.ok()) {
      std::fprintf(stderr, "FAIL serve: %s\n", st.to_string().c_str());
      ++failures;
    }
  }
  if (r.is_sampler()) {
    const int64_t vocab = config->vocab_size;
    auto single = single_rank_logits(dir, prompts);
    for (size_t i = 0; i < prompts.size(); ++i) {
      // Engine sequence ids start at 1, in enqueue order.
      const auto& got = r.runner().first_logits().at(static_cast<int64_t>(i) + 1);
      std::vector<float> hf = fixture_last_logits(dir, i, vocab);
      double vs_hf = nmse(got.data(), hf.data(), vocab);
      double vs_single = nmse(got.data(), single[i].data(), vocab);
      if (!(vs_hf < 1e-10) || !(vs_single < 1e-10)) {
        std::fprintf(stderr, "FAIL %s tp%d pp%d ep%d prompt %zu: logits NMSE %g vs transformers, %g vs single rank\n",
                     name.c_str(), options.tp, options.pp, options.ep, i, vs_hf, vs_single);
        ++failures;
      }
    }
  }
  if (failures == 0)
    std::printf("rank %d: %s tp%d pp%d ep%d PASS\n", (*world)->rank(), name.c_str(), options.tp,
                options.pp, options.ep);
  return failures == 0 ? 0 : 1;
}
