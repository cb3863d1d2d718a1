// Distributed benchmark: the leader times prefill and decode through the replica; afterwards every
// rank reports the payload bytes its TP/PP collectives moved, and the leader prints them per token
// beside the analytical count:
//   TP: 2 all-reduces of hidden × 4 bytes per layer per token (+1 for the vocab-parallel
//       embedding on the first stage), the stage input all-gather (hidden × 4) on later stages,
//       and the lm_head all-gather (tp × ceil(vocab / tp) × 4) per sampled row on the last stage;
//   PP: hidden / tp × 4 bytes per token sent by every stage but the last, received by every stage
//       but the first;
//   EP (counted apart, since it depends on where the router sends tokens): per MoE layer, each
//       rank routes 1/ep of the tokens and sends the pairs that belong to other ranks' experts
//       ((hidden + 1) × 4 bytes each) and gets their outputs back (hidden × 4); with the router
//       spreading pairs evenly that is top_k × (ep − 1) / ep² pairs per token each way. Measured
//       all-to-all bytes also hold the pair counts (8 bytes per peer per layer and step).
#include "apps/bench_distributed.h"

#include <chrono>
#include <functional>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "collective/mpi_communicator.h"
#include "common/check.h"
#include "common/process_env.h"
#include "worker/engine/engine.h"
#include "worker/replica.h"

namespace ponder::apps {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Counts {
  int64_t tokens = 0;       // tokens that went through the forward pass
  int64_t sampled_rows = 0; // logit rows produced
};

uint64_t analytical_bytes(const worker::ModelConfig& c, const collective::RankRole& role, int tp,
                          int pp, const Counts& n) {
  const uint64_t h4 = c.hidden_size * 4;
  const uint64_t layers = role.layer_end - role.layer_begin;
  const bool first = role.stage == 0, last = role.stage == pp - 1;
  uint64_t per_token = 0, per_row = 0;
  if (tp > 1) {
    per_token += (2 * layers + (first ? 1 : 0)) * h4;
    if (!first) per_token += h4;
    if (last) per_row += tp * ((c.vocab_size + tp - 1) / tp) * 4;
  }
  if (pp > 1) {
    if (!last) per_token += h4 / tp;
    if (!first) per_token += h4 / tp;
  }
  return per_token * n.tokens + per_row * n.sampled_rows;
}

// All-to-all bytes one rank sends per token when the router spreads pairs evenly over ranks.
double expected_all_to_all_per_token(const worker::ModelConfig& c,
                                     const collective::RankRole& role, int ep) {
  if (ep == 1) return 0.0;
  int64_t moe_layers = 0;
  for (int64_t l = role.layer_begin; l < role.layer_end; ++l) moe_layers += c.layer_is_moe(l);
  const double pairs = static_cast<double>(c.moe.top_k) * (ep - 1) / (double(ep) * ep);
  return moe_layers * pairs * ((c.hidden_size + 1) * 4.0 + c.hidden_size * 4.0);
}

}  // namespace

Status bench_distributed(const Args& args, int* argc, char*** argv) {
  PONDER_ASSIGN_OR_RETURN(std::string dir, args.require("model"));
  PONDER_ASSIGN_OR_RETURN(int64_t tp, args.get_int("tp", 1));
  PONDER_ASSIGN_OR_RETURN(int64_t pp, args.get_int("pp", 1));
  PONDER_ASSIGN_OR_RETURN(int64_t ep, args.get_int("ep", 1));
  PONDER_ASSIGN_OR_RETURN(auto prompt_lengths, args.get_int_list("prompt-lengths"));
  if (prompt_lengths.empty()) prompt_lengths = {128, 512};
  PONDER_ASSIGN_OR_RETURN(auto batches, args.get_int_list("batches"));
  if (batches.empty()) batches = {1, 4};
  PONDER_ASSIGN_OR_RETURN(int64_t steps, args.get_int("decode-steps", 32));
  PONDER_ASSIGN_OR_RETURN(auto precision,
                          worker::parse_matmul_precision(args.get("precision").value_or("bf16")));
  PONDER_ASSIGN_OR_RETURN(int64_t threads, args.get_int("threads", 0));
  PONDER_ASSIGN_OR_RETURN(auto quantize,
                          worker::parse_weight_quant(args.get("quantize").value_or("none")));

  PONDER_ASSIGN_OR_RETURN(auto mpi, collective::MpiRuntime::init(argc, argv));
  PONDER_ASSIGN_OR_RETURN(auto world, collective::MpiCommunicator::world());
  const ProcessEnv env = ProcessEnv::read();
  if (threads == 0) threads = std::max(1, worker::available_cores() / env.ompi_local_size.value_or(1));
  int64_t max_len = 16 + steps + 1;
  for (int32_t n : prompt_lengths) max_len = std::max<int64_t>(max_len, n + 1);
  int64_t max_batch = 1;
  for (int32_t b : batches) max_batch = std::max<int64_t>(max_batch, b);
  worker::ReplicaOptions options{
      .model_dir = dir, .tp = static_cast<int>(tp), .pp = static_cast<int>(pp),
      .ep = static_cast<int>(ep), .kv_blocks = max_batch * (max_len / 16 + 2),
      .backend = {.cpu = {.n_threads = static_cast<int>(threads), .precision = precision}},
      .load = {.quantize = quantize}};
  PONDER_ASSIGN_OR_RETURN(auto replica, worker::Replica::create(*world, options));
  const auto& c = replica->model().config();

  json prefill = json::array(), decode = json::array();
  Counts counts;
  if (replica->is_leader()) {
    // The prefill runs as one step: the budget covers the longest prompt.
    int32_t budget = 16 * static_cast<int32_t>(max_batch);
    for (int32_t n : prompt_lengths) budget = std::max(budget, n);
    worker::Engine engine(*replica, {.token_budget = budget});
    std::function<void(const worker::EngineOutput&)> on_output;
    auto run = [&](const std::vector<worker::EngineRequest>& reqs) -> Status {
      for (const auto& r : reqs) PONDER_RETURN_IF_ERROR(status_of(engine.enqueue(r, on_output)));
      while (!engine.idle()) PONDER_RETURN_IF_ERROR(status_of(engine.step()));
      return {};
    };
    for (int32_t n : prompt_lengths) {
      double best = 1e30;
      for (int rep = 0; rep < 2; ++rep) {
        auto t0 = Clock::now();
        PONDER_RETURN_IF_ERROR(run({{.prompt = worker::random_tokens(n, c.vocab_size, rep),
                                     .sampling = {.temperature = 0}, .max_tokens = 1}}));
        best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
        counts.tokens += n;
        counts.sampled_rows += 1;
      }
      prefill.push_back({{"prompt_tokens", n}, {"tokens_per_s", n / best}});
    }
    for (int32_t b : batches) {
      std::vector<worker::EngineRequest> reqs;
      for (int32_t i = 0; i < b; ++i)
        reqs.push_back({.prompt = worker::random_tokens(16, c.vocab_size, 100 + i),
                        .sampling = {.temperature = 0}, .max_tokens = steps + 1, .ignore_eos = true});
      Clock::time_point first;
      int64_t seen = 0;
      on_output = [&](const worker::EngineOutput& out) {
        if (!out.tokens.empty() && out.index == 0 && ++seen == b) first = Clock::now();
      };
      PONDER_RETURN_IF_ERROR(run(reqs));
      on_output = nullptr;
      double s = std::chrono::duration<double>(Clock::now() - first).count();
      decode.push_back({{"batch", b}, {"tokens_per_s", b * steps / s}});
      counts.tokens += b * (16 + steps);
      counts.sampled_rows += b * (steps + 1);
    }
    PONDER_RETURN_IF_ERROR(replica->shutdown());
  } else {
    PONDER_RETURN_IF_ERROR(replica->serve());
  }
  // Every rank's byte counts to the leader (world rank 0 leads replica 0).
  const collective::CommStats mine = replica->model_comm_stats(), ep_part = replica->ep_comm_stats();
  constexpr int kFields = 4;
  std::vector<uint64_t> all(world->size() * kFields);
  uint64_t fields[kFields] = {mine.total() - ep_part.total(), mine.calls, ep_part.all_to_all_bytes,
                              ep_part.all_gather_bytes};
  PONDER_RETURN_IF_ERROR(world->all_gather(fields, all.data(), sizeof(fields),
                                           collective::deadline_in(std::chrono::seconds(60))));
  int64_t shared[2] = {counts.tokens, counts.sampled_rows};
  PONDER_RETURN_IF_ERROR(world->broadcast(shared, sizeof(shared), 0,
                                          collective::deadline_in(std::chrono::seconds(60))));
  counts = {shared[0], shared[1]};
  if (world->rank() != 0) return {};

  auto layout = worker::model_layout(c, world->size(), int(tp), int(pp), {}, int(ep));
  json ranks = json::array();
  for (int r = 0; r < world->size(); ++r) {
    collective::RankRole role = layout->role(r);
    const uint64_t* f = all.data() + kFields * r;
    const uint64_t predicted = analytical_bytes(c, role, int(tp), int(pp), counts);
    json entry = {{"rank", r},
                  {"stage", role.stage},
                  {"tp_rank", role.tp_rank},
                  {"bytes", f[0]},
                  {"collective_calls", f[1]},
                  {"bytes_per_token", double(f[0]) / counts.tokens},
                  {"analytical_bytes", predicted},
                  {"analytical_bytes_per_token", double(predicted) / counts.tokens}};
    if (ep > 1) {
      entry["ep_rank"] = role.ep_rank;
      entry["all_to_all_bytes_per_token"] = double(f[2]) / counts.tokens;
      entry["all_to_all_bytes_per_token_if_evenly_routed"] =
          expected_all_to_all_per_token(c, role, int(ep));
      entry["ep_all_gather_bytes_per_token"] = double(f[3]) / counts.tokens;
    }
    ranks.push_back(entry);
  }
  json out = {{"model", dir},
              {"layout", ep > 1 ? strformat("tp%lldpp%lldep%lld", (long long)tp, (long long)pp,
                                            (long long)ep)
                                : strformat("tp%lldpp%lld", (long long)tp, (long long)pp)},
              {"ranks", world->size()},
              {"threads_per_rank", threads},
              {"precision", worker::matmul_precision_name(precision)},
              {"prefill", prefill},
              {"decode", decode},
              {"tokens_processed", counts.tokens},
              {"logit_rows", counts.sampled_rows},
              {"communication", ranks}};
  std::printf("%s\n", out.dump(2).c_str());
  return {};
}

}  // namespace ponder::apps
