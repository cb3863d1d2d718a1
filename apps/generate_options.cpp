// Option parsing and output shared by `ponder generate` and `ponder worker`.
#include "apps/generate_options.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "apps/args.h"
#include "common/check.h"
#include "coordinator/text/chat_template.h"
#include "worker/model/architecture.h"

namespace ponder::apps {

const char* const kGenerateUsage = R"(usage: ponder generate --model DIR (--prompt TEXT | --prompt-ids 1,2,3) [options]
       mpirun -np N ponder worker --model DIR --prompt ... --tp T --pp P [options]

  --model DIR          Hugging Face model directory (config.json + safetensors, and
                       tokenizer.json + tokenizer_config.json for text)
  --prompt TEXT        prompt text (BOS added when the tokenizer says so)
  --chat               render --prompt as a user message through the model's chat template
                       (add_generation_prompt); thinking and answer are printed separately
  --system TEXT        system message, with --chat
  --chat-template-kwargs JSON   extra template variables, e.g. '{"enable_thinking": false}'
  --prompt-ids LIST    prompt as comma-separated token ids (used exactly as given)
  --max-thinking-tokens N   insert the end-of-thinking delimiter after N thinking tokens
  --min-thinking-tokens N   the delimiter cannot be drawn before N thinking tokens
  --extend-thinking N  replace the first N end-of-thinking delimiters by "Wait" (s1)
  --max-tokens N       tokens to generate (default: with --chat, until the end of the turn or
                       the model's context window is full; otherwise 64)
  --temperature T      0 = greedy (default 0)
  --top-k K  --top-p P  --min-p P
  --repetition-penalty R  --presence-penalty P  --frequency-penalty F
  --seed S             sampling seed (default 0); same seed, same tokens
  --ignore-eos         keep generating past end-of-sequence tokens
  --backend B          cpu (default) or cuda (one GPU per rank: SLURM_LOCALID or the MPI
                       local rank picks it; TP/PP collectives over NCCL)
  --threads N          CPU threads per rank (default: all cores; 1 per rank under mpirun)
  --precision P        bf16 (default: bf16 weights meet bf16-rounded activations in bf16 dot
                       products, f32 accumulation) or exact (f32 activations; the reference)
  --quantize Q         none (default) or int8: matmul weights quantized at load to int8 with
                       per-row scales (half of bf16's bytes), activations per block of 32; CPU
  --kv-cache-dtype D   f32 (default) or bf16 (half the KV cache's bytes)
  --tp N  --pp N       tensor- and pipeline-parallel ranks (generate starts N = tp × pp × ep
                       ranks with mpirun itself; worker runs inside an mpirun you started)
  --ep N               expert parallelism (MoE models): the routed experts of each layer over N
                       columns of tp ranks per stage, tokens to them by all-to-all
  --stage-layers LIST  layers per pipeline stage, e.g. 2,1,1 (default: even split)
  --timeout-ms MS      deadline of every collective between ranks (default 60000)
  --json               print one JSON object (token ids, timings) instead of streaming
)";

std::set<std::string> with_sampling_options(std::set<std::string> names) {
  names.insert({"temperature", "top-k", "top-p", "min-p", "repetition-penalty", "presence-penalty",
                "frequency-penalty", "seed"});
  return names;
}

Expected<worker::SamplingParams> parse_sampling(const Args& args) {
  worker::SamplingParams s;
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
  return s;
}

Expected<std::vector<int32_t>> encode_user_prompt(const text::Tokenizer& tok,
                                                  const text::ChatTemplate* tmpl,
                                                  const std::string& prompt,
                                                  const std::string& system,
                                                  const nlohmann::ordered_json& kwargs,
                                                  std::string* rendered) {
  std::vector<int32_t> ids;
  if (tmpl != nullptr) {
    nlohmann::ordered_json messages = nlohmann::ordered_json::array();
    if (!system.empty()) messages.push_back({{"role", "system"}, {"content", system}});
    messages.push_back({{"role", "user"}, {"content", prompt}});
    PONDER_ASSIGN_OR_RETURN(std::string text, tmpl->render(messages, true, kwargs));
    tok.encode(text, &ids);
    if (rendered) *rendered = std::move(text);
    return ids;
  }
  if (tok.add_bos_token() && tok.bos_token()) ids.push_back(tok.bos_token()->id);
  tok.encode(prompt, &ids);
  if (rendered) *rendered = prompt;
  return ids;
}

Expected<GenerateOptions> parse_generate_options(int argc, char** argv) {
  PONDER_ASSIGN_OR_RETURN(
      Args args, Args::parse(argc, argv, {"json", "ignore-eos", "help", "chat"},
                             with_sampling_options({"model", "prompt", "prompt-ids", "max-tokens", "system",
                                           "chat-template-kwargs", "max-thinking-tokens",
                                           "min-thinking-tokens", "extend-thinking", "backend", "threads",
                                           "precision", "quantize", "kv-cache-dtype", "tp", "pp", "ep", "stage-layers",
                                           "timeout-ms"})));
  if (args.has("help")) {
    std::fputs(kGenerateUsage, stdout);
    return error(StatusCode::kCancelled, "help");
  }
  GenerateOptions o;
  PONDER_ASSIGN_OR_RETURN(o.model_dir, args.require("model"));
  o.prompt_text = args.get("prompt");
  PONDER_ASSIGN_OR_RETURN(o.prompt_ids, args.get_int_list("prompt-ids"));
  if (o.prompt_text.has_value() == !o.prompt_ids.empty())
    return error(StatusCode::kInvalidArgument, "give exactly one of --prompt TEXT and --prompt-ids 1,2,3");
  o.chat = args.has("chat");
  if (o.chat && !o.prompt_text)
    return error(StatusCode::kInvalidArgument, "--chat renders --prompt TEXT through the chat template");
  o.system = args.get("system").value_or("");
  if (auto kw = args.get("chat-template-kwargs")) {
    auto parsed = nlohmann::ordered_json::parse(*kw, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded() || !parsed.is_object())
      return error(StatusCode::kInvalidArgument, "--chat-template-kwargs: expected a JSON object");
    o.chat_template_kwargs = std::move(parsed);
  }
  PONDER_ASSIGN_OR_RETURN(o.max_thinking_tokens, args.get_int("max-thinking-tokens", -1));
  PONDER_ASSIGN_OR_RETURN(o.min_thinking_tokens, args.get_int("min-thinking-tokens", 0));
  PONDER_ASSIGN_OR_RETURN(int64_t extend, args.get_int("extend-thinking", 0));
  o.extend_thinking = static_cast<int32_t>(extend);
  if (args.has("max-tokens")) {
    PONDER_ASSIGN_OR_RETURN(int64_t max_tokens, args.get_int("max-tokens", 0));
    if (max_tokens < 1) return error(StatusCode::kInvalidArgument, "--max-tokens must be >= 1");
    o.max_tokens = max_tokens;
  }
  PONDER_ASSIGN_OR_RETURN(o.sampling, parse_sampling(args));
  PONDER_ASSIGN_OR_RETURN(o.backend, worker::parse_backend_kind(args.get("backend").value_or("cpu")));
  PONDER_ASSIGN_OR_RETURN(int64_t threads, args.get_int("threads", 0));
  o.threads = static_cast<int>(threads);
  PONDER_ASSIGN_OR_RETURN(o.precision,
                          worker::parse_matmul_precision(args.get("precision").value_or("bf16")));
  PONDER_ASSIGN_OR_RETURN(o.quantize,
                          worker::parse_weight_quant(args.get("quantize").value_or("none")));
  PONDER_ASSIGN_OR_RETURN(o.kv_dtype, worker::parse_kv_cache_dtype(
                                          args.get("kv-cache-dtype").value_or("f32"), "--kv-cache-dtype"));
  PONDER_ASSIGN_OR_RETURN(int64_t tp, args.get_int("tp", 1));
  PONDER_ASSIGN_OR_RETURN(int64_t pp, args.get_int("pp", 1));
  PONDER_ASSIGN_OR_RETURN(int64_t ep, args.get_int("ep", 1));
  if (tp < 1 || pp < 1 || ep < 1)
    return error(StatusCode::kInvalidArgument, "--tp, --pp and --ep must be >= 1");
  o.tp = static_cast<int>(tp);
  o.pp = static_cast<int>(pp);
  o.ep = static_cast<int>(ep);
  PONDER_ASSIGN_OR_RETURN(auto stages, args.get_int_list("stage-layers"));
  o.stage_layers.assign(stages.begin(), stages.end());
  PONDER_ASSIGN_OR_RETURN(int64_t timeout, args.get_int("timeout-ms", 60000));
  if (timeout < 1) return error(StatusCode::kInvalidArgument, "--timeout-ms must be >= 1");
  o.timeout = std::chrono::milliseconds(timeout);
  o.ignore_eos = args.has("ignore-eos");
  o.json = args.has("json");
  return o;
}

namespace {

// --max-tokens, or its default: a chat turn may run to the end of the context window (it ends
// itself with an end-of-turn token); a raw prompt gets kDefaultRawMaxTokens.
Expected<int64_t> resolve_max_tokens(const GenerateOptions& o, size_t prompt_tokens) {
  if (o.max_tokens) return *o.max_tokens;
  if (!o.chat) return kDefaultRawMaxTokens;
  PONDER_ASSIGN_OR_RETURN(auto config, worker::load_model_config(o.model_dir));
  const int64_t room = config.max_position_embeddings - static_cast<int64_t>(prompt_tokens);
  if (room < 1)
    return error(StatusCode::kInvalidArgument,
                 "the prompt (%zu tokens) fills the model's context of %lld tokens", prompt_tokens,
                 (long long)config.max_position_embeddings);
  return room;
}

}  // namespace

Expected<PreparedPrompt> prepare_prompt(const GenerateOptions& o) {
  PreparedPrompt p;
  const bool has_tokenizer = std::filesystem::exists(std::filesystem::path(o.model_dir) / "tokenizer.json");
  if (!has_tokenizer) {
    if (o.prompt_text)
      return error(StatusCode::kNotFound, "%s has no tokenizer.json: give --prompt-ids instead of --prompt",
                   o.model_dir.c_str());
    p.ids = o.prompt_ids;
    PONDER_ASSIGN_OR_RETURN(p.max_tokens, resolve_max_tokens(o, p.ids.size()));
    return p;
  }
  PONDER_ASSIGN_OR_RETURN(text::Tokenizer tok, text::Tokenizer::load(o.model_dir));
  std::string rendered;
  if (o.prompt_text) {
    std::optional<text::ChatTemplate> tmpl;
    if (o.chat) {
      PONDER_ASSIGN_OR_RETURN(text::ChatTemplate t, text::ChatTemplate::load(o.model_dir));
      tmpl = std::move(t);
    }
    PONDER_ASSIGN_OR_RETURN(p.ids, encode_user_prompt(tok, tmpl ? &*tmpl : nullptr, *o.prompt_text,
                                                      o.system, o.chat_template_kwargs, &rendered));
  } else {
    p.ids = o.prompt_ids;
  }
  auto open = tok.token_id("<think>"), close = tok.token_id("</think>");
  if (open && close) {
    p.reasoning = text::ReasoningConfig{};
    p.think_start = {*open};
    p.think_end = {*close};
    p.wait_tokens = tok.encode("\nWait");
    p.starts_in_thinking = o.chat && text::prompt_opens_reasoning(rendered, *p.reasoning);
    p.reasoning->starts_in_reasoning = p.starts_in_thinking;
  }
  p.tokenizer = std::move(tok);
  PONDER_ASSIGN_OR_RETURN(p.max_tokens, resolve_max_tokens(o, p.ids.size()));
  return p;
}

worker::EngineOptions engine_options(const PreparedPrompt& p) {
  worker::EngineOptions e;
  e.think_start = p.think_start;
  e.think_end = p.think_end;
  e.wait_tokens = p.wait_tokens;
  if (p.tokenizer) {
    text::Tokenizer tok = *p.tokenizer;
    e.token_bytes = [tok](int32_t t) { return tok.decode(std::span<const int32_t>(&t, 1)); };
  }
  return e;
}

GenerationPrinter::GenerationPrinter(const GenerateOptions& options, const PreparedPrompt& prompt)
    : options_(options), prompt_(prompt) {
  // Special tokens (end of turn, end of text) are not part of the text a user reads.
  if (prompt.tokenizer) decoder_.emplace(*prompt.tokenizer, /*skip_special=*/true);
  if (prompt.tokenizer && prompt.reasoning && options.chat) parser_.emplace(*prompt.reasoning);
}

void GenerationPrinter::start() { start_ = Clock::now(); }

void GenerationPrinter::print(const text::ReasoningSplit& delta) {
  all_.reasoning += delta.reasoning;
  all_.content += delta.content;
  if (options_.json) return;
  if (!delta.reasoning.empty()) {
    if (!said_thinking_) std::fputs("── thinking ──\n", stdout);
    said_thinking_ = true;
    std::fputs(delta.reasoning.c_str(), stdout);
  }
  if (!delta.content.empty()) {
    if (!said_answer_) std::fputs(said_thinking_ ? "\n── answer ──\n" : "── answer ──\n", stdout);
    said_answer_ = true;
    std::fputs(delta.content.c_str(), stdout);
  }
  std::fflush(stdout);
}

void GenerationPrinter::token(int32_t token) {
  if (generated_.empty()) first_token_ = Clock::now();
  generated_.push_back(token);
  if (!decoder_) {
    if (!options_.json) {
      std::printf("%s%d", generated_.size() == 1 ? "" : " ", token);
      std::fflush(stdout);
    }
    return;
  }
  std::string piece = decoder_->push(token);
  text_ += piece;
  if (parser_) {
    print(parser_->feed(piece));
  } else if (!options_.json) {
    std::fputs(piece.c_str(), stdout);
    std::fflush(stdout);
  }
}

void GenerationPrinter::finish(const std::string& finish_reason, const std::string& layout) {
  if (decoder_) {
    std::string rest = decoder_->flush();
    text_ += rest;
    if (parser_) {
      print(parser_->feed(rest));
      print(parser_->finish());
    } else if (!options_.json) {
      std::fputs(rest.c_str(), stdout);
    }
  }
  auto seconds = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };
  const Clock::time_point end = Clock::now();
  const double prefill_s = seconds(first_token_ - start_);
  const double decode_s = seconds(end - first_token_);
  const size_t n_prompt = prompt_.ids.size();
  const double prefill_tps = n_prompt / prefill_s;
  const double decode_tps = generated_.size() > 1 ? (generated_.size() - 1) / decode_s : 0.0;
  if (options_.json) {
    nlohmann::json out = {
        {"model", options_.model_dir},
        {"layout", layout},
        {"prompt_ids", prompt_.ids},
        {"token_ids", generated_},
        {"finish_reason", finish_reason},
        {"usage", {{"prompt_tokens", n_prompt}, {"completion_tokens", generated_.size()}}},
        {"timings", {{"prefill_tokens_per_s", prefill_tps}, {"decode_tokens_per_s", decode_tps}}}};
    if (decoder_) out["text"] = text_;
    if (parser_) {
      out["reasoning_content"] = all_.reasoning;
      out["content"] = all_.content;
    }
    std::printf("%s\n", out.dump().c_str());
  } else {
    std::printf("\n");
  }
  std::fflush(stdout);
  std::fprintf(stderr, "prefill: %zu tokens, %.1f tokens/s; decode: %zu tokens, %.1f tokens/s\n",
               n_prompt, prefill_tps, generated_.size(), decode_tps);
  if (finish_reason == "length" && !options_.ignore_eos)
    std::fprintf(stderr, "stopped at the length limit (%lld tokens) before the model ended its turn; "
                         "raise --max-tokens for the rest\n", (long long)prompt_.max_tokens);
}

Status run_generation(worker::Engine& engine, const GenerateOptions& o, const PreparedPrompt& p,
                      const std::string& layout) {
  GenerationPrinter printer(o, p);
  std::string finish_reason;
  printer.start();
  worker::EngineRequest request{.prompt = p.ids,
                                .sampling = o.sampling,
                                .max_tokens = p.max_tokens,
                                .ignore_eos = o.ignore_eos,
                                .thinking = p.starts_in_thinking,
                                .max_thinking_tokens = o.max_thinking_tokens,
                                .min_thinking_tokens = o.min_thinking_tokens,
                                .extend_thinking = o.extend_thinking};
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

int finish_rank(const char* command, const Status& status) {
  if (status.ok()) return 0;
  const int code = report_failure(command, status);
  std::fflush(stderr);
  std::_Exit(code);
}

}  // namespace ponder::apps
