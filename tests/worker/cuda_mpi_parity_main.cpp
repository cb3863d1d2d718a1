// Tensor/pipeline parallel forward passes on the CUDA backend under mpirun: every rank loads its
// shard onto its GPU, collectives go through NCCL on device buffers (`nccl`: one GPU per rank) or
// through MPI with host copies (`mpi`: ranks may share one GPU). All fixture prompts prefill as
// one batch, then 8 decode steps follow the fixture's greedy tokens; on the last stage the logits
// of every step must match a single-process CPU run of the same batches.
// Usage: cuda_mpi_parity FIXTURE TP PP mpi|nccl. Exit 77 (skip) without enough GPUs or when the
// layout does not fit the model; 0 when every rank passes.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "collective/mpi_communicator.h"
#include "collective/nccl_communicator.h"
#include "collective/world_layout.h"
#include "worker/backend/cpu/cpu_backend.h"
#include "worker/backend/cuda/cuda_backend.h"
#include "worker/model/architecture.h"
#include "worker/model/decoder_model.h"
#include "tests/worker/nmse.h"

using namespace ponder;
using namespace ponder::worker;

namespace {

// The step batches: step 0 prefills every prompt; step s > 0 feeds token s - 1 of each prompt's
// greedy continuation. Logits of each sequence's last row.
struct Steps {
  std::vector<std::vector<int32_t>> tokens, rows;
  std::vector<BatchLayout> batches;
};

Steps make_steps(const nlohmann::json& meta, const std::vector<std::vector<int32_t>>& tables,
                 int n_steps) {
  Steps s;
  const auto prompts = meta["prompts"].get<std::vector<std::vector<int32_t>>>();
  const auto greedy = meta["greedy"].get<std::vector<std::vector<int32_t>>>();
  for (int step = 0; step < n_steps; ++step) {
    std::vector<int32_t> tokens, rows;
    BatchLayout b;
    for (size_t i = 0; i < prompts.size(); ++i) {
      const int32_t begin = static_cast<int32_t>(tokens.size());
      const int32_t start = step == 0 ? 0 : static_cast<int32_t>(prompts[i].size()) + step - 1;
      if (step == 0) {
        tokens.insert(tokens.end(), prompts[i].begin(), prompts[i].end());
      } else {
        tokens.push_back(greedy[i][step - 1]);
      }
      const int32_t n = static_cast<int32_t>(tokens.size()) - begin;
      b.seqs.push_back(
          {.token_begin = begin, .n_tokens = n, .start_pos = start, .block_table = tables[i]});
      for (int32_t j = 0; j < n; ++j) b.positions.push_back(start + j);
      rows.push_back(static_cast<int32_t>(tokens.size()) - 1);
    }
    s.tokens.push_back(tokens);
    s.rows.push_back(rows);
    s.batches.push_back(std::move(b));
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  auto rt = collective::MpiRuntime::init(&argc, &argv);
  if (!rt || argc < 5) {
    std::fprintf(stderr, "usage: cuda_mpi_parity FIXTURE TP PP mpi|nccl\n");
    return 2;
  }
  const std::string name = argv[1], comm_kind = argv[4];
  const std::string dir = std::string(PONDER_TEST_DATA_DIR) + "/models/" + name;
  const int tp = std::atoi(argv[2]), pp = std::atoi(argv[3]);
  auto world = collective::MpiCommunicator::world();
  const int rank = (*world)->rank(), size = (*world)->size();
  auto config = load_model_config(dir);
  auto layout = collective::WorldLayout::create({.world_size = size,
                                                 .tp = tp,
                                                 .pp = pp,
                                                 .n_heads = config->n_heads,
                                                 .n_kv_heads = config->n_kv_heads,
                                                 .n_layers = config->n_layers,
                                                 .hidden_size = config->hidden_size,
                                                 .intermediate_size = config->intermediate_size});
  const int devices = cuda_device_count();
  const bool nccl = comm_kind == "nccl";
  if (!layout || devices == 0 || (nccl && devices < size)) {
    if (rank == 0)
      std::printf("SKIP %s tp%d pp%d %s: %s\n", name.c_str(), tp, pp, comm_kind.c_str(),
                  !layout ? layout.error().message().c_str()
                          : "not enough CUDA devices for one per rank (or none)");
    return 77;
  }
  const collective::RankRole role = layout->role(rank);
  auto deadline = [] { return collective::deadline_in(std::chrono::seconds(60)); };
  auto tp_mpi = (*world)->split(role.replica * pp + role.stage, role.tp_rank, deadline());
  auto pp_mpi = (*world)->split(role.replica * tp + role.tp_rank, role.stage, deadline());
  if (!tp_mpi || !pp_mpi) {
    std::fprintf(stderr, "FAIL rank %d: split\n", rank);
    return 1;
  }
  auto backend = CudaBackend::create({.device = nccl ? rank : rank % devices});
  if (!backend) {
    std::fprintf(stderr, "FAIL rank %d: %s\n", rank, backend.error().to_string().c_str());
    return 1;
  }
  std::unique_ptr<collective::Communicator> tp_comm = std::move(*tp_mpi),
                                            pp_comm = std::move(*pp_mpi);
  if (nccl) {
    auto stream = static_cast<cudaStream_t>((*backend)->stream());
    auto tp_nccl = collective::NcclCommunicator::create(*tp_comm, rank, deadline(), stream);
    auto pp_nccl = collective::NcclCommunicator::create(*pp_comm, rank, deadline(), stream);
    if (!tp_nccl || !pp_nccl) {
      std::fprintf(stderr, "FAIL rank %d: NCCL communicators\n", rank);
      return 1;
    }
    tp_comm = std::move(*tp_nccl);
    pp_comm = std::move(*pp_nccl);
  }
  const ShardComms comms{.tp = tp > 1 ? tp_comm.get() : nullptr,
                         .pp = pp > 1 ? pp_comm.get() : nullptr,
                         .timeout = std::chrono::seconds(60)};
  const ShardSpec shard{.tp_rank = role.tp_rank,
                        .tp_size = tp,
                        .layer_begin = role.layer_begin,
                        .layer_end = role.layer_end,
                        .first_stage = role.stage == 0,
                        .last_stage = role.stage == pp - 1};
  auto model = DecoderModel::load(dir, {}, shard);
  if (!model || !(*model)->move_to(**backend).ok()) {
    std::fprintf(stderr, "FAIL rank %d: loading the shard\n", rank);
    return 1;
  }
  auto cache = KvCache::create((*model)->kv_cache_config(64), (*backend)->memory());
  nlohmann::json meta = nlohmann::json::parse(std::ifstream(dir + "/parity.json"));
  const size_t n_prompts = meta["prompts"].size();
  const int n_steps = 9;
  std::vector<std::vector<int32_t>> tables(n_prompts);
  for (size_t i = 0; i < n_prompts; ++i)
    (void)cache->reserve(tables[i], meta["prompts"][i].size() + n_steps);
  const Steps steps = make_steps(meta, tables, n_steps);

  // The single-process CPU reference, on the ranks that hold logits.
  std::unique_ptr<DecoderModel> ref_model;
  std::unique_ptr<CpuBackend> ref_backend;
  std::unique_ptr<KvCache> ref_cache;
  if (shard.last_stage) {
    ref_model = std::move(*DecoderModel::load(dir));
    ref_backend = std::move(*CpuBackend::create({.n_threads = 1}));
    ref_cache =
        std::make_unique<KvCache>(std::move(*KvCache::create(ref_model->kv_cache_config(64))));
    std::vector<std::vector<int32_t>> ref_tables(n_prompts);
    for (size_t i = 0; i < n_prompts; ++i)
      (void)ref_cache->reserve(ref_tables[i], meta["prompts"][i].size() + n_steps);
    if (ref_tables != tables) {
      std::fprintf(stderr, "FAIL rank %d: block tables differ\n", rank);
      return 1;
    }
  }
  const int64_t vocab = config->vocab_size;
  const bool f32 = meta["dtype"] == "float32";
  int failures = 0;
  for (int s = 0; s < n_steps; ++s) {
    std::vector<float> got(steps.rows[s].size() * vocab, NAN), want(got.size());
    Status st = (*model)->forward(**backend, *cache, steps.tokens[s], steps.batches[s],
                                  steps.rows[s], got.data(), comms);
    if (!st.ok()) {
      std::fprintf(stderr, "FAIL rank %d step %d: %s\n", rank, s, st.to_string().c_str());
      return 1;
    }
    if (!shard.last_stage) continue;
    st = ref_model->forward(*ref_backend, *ref_cache, steps.tokens[s], steps.batches[s],
                            steps.rows[s], want.data());
    const double e = nmse(got, want);
    if (!st.ok() || !(e < (f32 ? 1e-9 : 1e-3))) {
      std::fprintf(stderr, "FAIL %s tp%d pp%d %s rank %d step %d: NMSE %g vs one CPU process\n",
                   name.c_str(), tp, pp, comm_kind.c_str(), rank, s, e);
      ++failures;
    }
  }
  if (failures == 0)
    std::printf("rank %d: %s tp%d pp%d %s PASS\n", rank, name.c_str(), tp, pp, comm_kind.c_str());
  return failures == 0 ? 0 : 1;
}
