// `ponder complete --model DIR --input FILE.jsonl`: every line's prompt ("question" or "prompt")
// goes through the model's chat template (--chat) and into the engine at once (continuous
// batching, n samples sharing the prompt's KV blocks); one JSONL line per input comes out:
// {"id", "completion"} for n = 1, {"id", "completions": [...]} otherwise — the format the task
// suite's grader reads.
#include "apps/complete_command.h"

#include <cstdio>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "apps/args.h"
#include "apps/generate_options.h"
#include "common/check.h"
#include "common/log.h"
#include "coordinator/text/chat_template.h"
#include "coordinator/text/tokenizer.h"
#include "worker/backend/backend_factory.h"
#include "worker/engine/engine.h"
#include "worker/model/decoder_model.h"

namespace ponder::apps {
namespace {

constexpr const char* kUsage = R"(usage: ponder complete --model DIR --input FILE.jsonl [options]

  --input FILE         JSONL; each line has "id" and "question" (or "prompt")
  --output FILE        where to write the completions (default: stdout)
  --chat               render each prompt as a user message through the chat template
  --n N                samples per prompt (default 1; sample i uses seed + i)
  --max-tokens N       (default 256); sampling as in ponder generate: --temperature T
                       (default 0) --top-k --top-p --min-p --seed S and the penalties
  --threads N          CPU threads   --token-budget N  tokens per engine step (default 512)
  --backend B          cpu (default) or cuda
  --quantize Q         none (default) or int8 (load-time int8 weights; CPU)
  --kv-cache-dtype D   f32 (default) or bf16 (half the KV cache's bytes)
)";

Status complete(const Args& args) {
  PONDER_ASSIGN_OR_RETURN(std::string dir, args.require("model"));
  PONDER_ASSIGN_OR_RETURN(std::string input, args.require("input"));
  PONDER_ASSIGN_OR_RETURN(int64_t n, args.get_int("n", 1));
  PONDER_ASSIGN_OR_RETURN(int64_t max_tokens, args.get_int("max-tokens", 256));
  if (n < 1 || max_tokens < 1)
    return error(StatusCode::kInvalidArgument, "--n and --max-tokens must be at least 1");
  PONDER_ASSIGN_OR_RETURN(worker::SamplingParams sampling, parse_sampling(args));
  PONDER_ASSIGN_OR_RETURN(int64_t threads, args.get_int("threads", 0));
  PONDER_ASSIGN_OR_RETURN(worker::BackendKind backend_kind,
                          worker::parse_backend_kind(args.get("backend").value_or("cpu")));
  PONDER_ASSIGN_OR_RETURN(int64_t budget, args.get_int("token-budget", 512));
  PONDER_ASSIGN_OR_RETURN(auto quantize,
                          worker::parse_weight_quant(args.get("quantize").value_or("none")));
  PONDER_ASSIGN_OR_RETURN(auto kv_dtype, worker::parse_kv_cache_dtype(
                                             args.get("kv-cache-dtype").value_or("f32"), "--kv-cache-dtype"));
  const bool chat = args.has("chat");

  PONDER_ASSIGN_OR_RETURN(text::Tokenizer tok, text::Tokenizer::load(dir));
  std::optional<text::ChatTemplate> tmpl;
  if (chat) {
    PONDER_ASSIGN_OR_RETURN(text::ChatTemplate t, text::ChatTemplate::load(dir));
    tmpl = std::move(t);
  }
  std::ifstream in(input);
  if (!in) return error(StatusCode::kNotFound, "%s: cannot open", input.c_str());
  struct Item {
    nlohmann::json id;
    std::vector<int32_t> prompt;
  };
  std::vector<Item> items;
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object())
      return error(StatusCode::kInvalidArgument, "%s:%d: not a JSON object", input.c_str(), line_no);
    const char* key = j.contains("question") ? "question" : "prompt";
    if (!j.contains(key) || !j[key].is_string())
      return error(StatusCode::kInvalidArgument, "%s:%d: needs a \"question\" or \"prompt\" string",
                   input.c_str(), line_no);
    Item item{j.value("id", nlohmann::json(line_no)), {}};
    PONDER_ASSIGN_OR_RETURN(item.prompt, encode_user_prompt(tok, tmpl ? &*tmpl : nullptr,
                                                            j[key].get<std::string>()));
    items.push_back(std::move(item));
  }
  if (items.empty()) return error(StatusCode::kInvalidArgument, "%s: no prompts in the file", input.c_str());

  PONDER_ASSIGN_OR_RETURN(auto model, worker::DecoderModel::load(dir, {.quantize = quantize}));
  PONDER_ASSIGN_OR_RETURN(auto backend, worker::create_backend({.kind = backend_kind,
                                                                 .cpu = {.n_threads = int(threads)}}));
  PONDER_RETURN_IF_ERROR(model->move_to(*backend));
  // Room for every sequence at once when it fits in 2 GiB; the engine preempts otherwise.
  const int64_t block_bytes = worker::KvCache::block_bytes(model->kv_cache_config(1, 16, kv_dtype));
  const int64_t want = static_cast<int64_t>(items.size()) * n * ((512 + max_tokens) / 16 + 2);
  const int64_t blocks = std::min<int64_t>(want, (int64_t{2} << 30) / block_bytes);
  PONDER_ASSIGN_OR_RETURN(auto cache,
                          worker::KvCache::create(model->kv_cache_config(blocks, 16, kv_dtype), backend->memory()));
  worker::LocalExecutor executor(*model, *backend, cache);
  worker::Engine engine(executor, {.token_budget = static_cast<int32_t>(budget),
                                   .max_n = static_cast<int32_t>(std::max<int64_t>(n, 1))});
  std::map<int64_t, size_t> item_of;
  std::vector<std::vector<std::vector<int32_t>>> outputs(items.size(), std::vector<std::vector<int32_t>>(n));
  for (size_t i = 0; i < items.size(); ++i) {
    worker::EngineRequest r{.prompt = items[i].prompt,
                            .n = static_cast<int32_t>(n),
                            .sampling = sampling,
                            .max_tokens = max_tokens};
    r.sampling.seed = sampling.seed + 1000 * i;  // samples of prompt i use seed + 1000 i + j
    PONDER_ASSIGN_OR_RETURN(int64_t id, engine.enqueue(r, [&outputs, &item_of](const worker::EngineOutput& o) {
      auto& v = outputs[item_of.at(o.request_id)][o.index];
      v.insert(v.end(), o.tokens.begin(), o.tokens.end());
    }));
    item_of[id] = i;
  }
  PONDER_LOG(kInfo, "complete", "%zu prompts × %lld samples", items.size(), (long long)n);
  while (!engine.idle()) PONDER_RETURN_IF_ERROR(status_of(engine.step()));

  FILE* out = stdout;
  if (auto path = args.get("output")) {
    out = std::fopen(path->c_str(), "w");
    if (out == nullptr) return error(StatusCode::kInvalidArgument, "%s: cannot write", path->c_str());
  }
  for (size_t i = 0; i < items.size(); ++i) {
    nlohmann::json line = {{"id", items[i].id}};
    std::vector<std::string> texts;
    for (const auto& ids : outputs[i]) texts.push_back(tok.decode(ids, /*skip_special=*/true));
    if (n == 1) {
      line["completion"] = texts[0];
    } else {
      line["completions"] = texts;
    }
    std::fprintf(out, "%s\n", line.dump().c_str());
  }
  if (out != stdout) std::fclose(out);
  return {};
}

}  // namespace

int run_complete(int argc, char** argv) {
  auto args = Args::parse(argc, argv, {"help", "chat"},
                          with_sampling_options({"model", "input", "output", "n", "max-tokens",
                                                 "threads", "backend", "token-budget", "quantize", "kv-cache-dtype"}));
  if (args && args->has("help")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  Status st = args ? complete(*args) : args.error();
  if (!st.ok()) {
    std::fprintf(stderr, "ponder complete: %s\n", st.message().c_str());
    return st.code() == StatusCode::kInvalidArgument || st.code() == StatusCode::kNotFound ? 2 : 1;
  }
  return 0;
}

}  // namespace ponder::apps
