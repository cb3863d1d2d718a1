// Fuzzes what the server does with the body of POST /v1/chat/completions and /v1/completions
// before and after the replicas: the JSON body → CompletionRequest reader (both endpoints), the
// prompts (chat template + tokenizer of models/tiny-reasoner), the engine requests, the error
// answer, and — for requests that get that far — the response assembly of a made-up generation
// (the prompt's own tokens echoed back) through detokenization, stop strings, the reasoning split
// and logprobs, streamed and whole.
//
// Input: a request body (any bytes).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/api/completion_request.h"
#include "coordinator/api/engine_request.h"
#include "coordinator/api/prompt.h"
#include "coordinator/api/response_assembler.h"
#include "coordinator/model_text.h"

namespace {

using namespace ponder::coordinator;
using ponder::worker::EngineOutput;
using ponder::worker::EngineRequest;

const ModelText& model() {
  static const ModelText* m = [] {
    auto loaded = ModelText::load(PONDER_SOURCE_DIR "/models/tiny-reasoner");
    if (!loaded) {
      std::fprintf(stderr, "completion_request_fuzzer: %s\n", loaded.error().to_string().c_str());
      std::abort();
    }
    return new ModelText(std::move(*loaded));
  }();
  return *m;
}

// The server's limits for this model (ServerOptions defaults, a 1024-token context).
constexpr api::RequestLimits kRequestLimits{.max_n = 8, .vocab_size = 310, .max_prompts = 8};
constexpr api::GenerationLimits kGenerationLimits{
    .context_length = 1024, .kv_cache_tokens = 512, .has_thinking_delimiter = true};

// The engine's part, made up: each choice "generates" the first tokens of its prompt in two
// outputs, the last one finished, with logprobs and alternatives when asked for.
void assemble(const api::CompletionRequest& request, const std::vector<EngineRequest>& engine) {
  const bool chat = request.endpoint == api::Endpoint::kChatCompletions;
  std::vector<api::ChoiceOptions> per_prompt;
  std::vector<int64_t> prompt_tokens;
  for (const EngineRequest& e : engine) {
    api::ChoiceOptions o{.skip_special_tokens = request.skip_special_tokens,
                         .stop = request.stop,
                         .include_stop_str_in_output = request.include_stop_str_in_output,
                         .logprobs = request.logprobs};
    if (chat && model().reasoning) {
      o.reasoning = *model().reasoning;
      o.reasoning->starts_in_reasoning = e.thinking;
    }
    per_prompt.push_back(std::move(o));
    prompt_tokens.push_back(static_cast<int64_t>(e.prompt.size()));
  }
  api::ResponseAssembler assembler({.endpoint = request.endpoint,
                                    .id = "fuzz",
                                    .created = 1,
                                    .model = "tiny-reasoner",
                                    .stream = request.stream,
                                    .include_usage = request.include_usage,
                                    .logprobs = request.logprobs,
                                    .reasoning = chat && model().reasoning.has_value()},
                                   model().tokenizer, per_prompt, request.n, prompt_tokens);
  std::string sent = assembler.stream_start();
  for (size_t p = 0; p < engine.size(); ++p) {
    const std::vector<int32_t>& prompt = engine[p].prompt;
    const size_t generated = std::min<size_t>(prompt.size(), 48);
    for (int32_t index = 0; index < request.n; ++index) {
      for (int part = 0; part < 2; ++part) {
        EngineOutput out{.request_id = static_cast<int64_t>(p), .index = index};
        const size_t begin = part == 0 ? 0 : generated / 2, end = part == 0 ? generated / 2 : generated;
        for (size_t i = begin; i < end; ++i) {
          out.tokens.push_back(prompt[i]);
          out.logprobs.push_back(i % 7 == 3 ? NAN : -0.25f * static_cast<float>(i % 5));
          std::vector<ponder::worker::TokenLogprob> top;
          for (int32_t k = 0; k < request.top_logprobs; ++k)
            top.push_back({.token = (prompt[i] + k) % 310, .logprob = -1.0f - k});
          out.top_logprobs.push_back(std::move(top));
        }
        if (part == 1) {
          out.finished = true;
          out.finish_reason = index % 2 ? "length" : "stop";
          out.usage = {.prompt_tokens = static_cast<int64_t>(prompt.size()),
                       .completion_tokens = static_cast<int64_t>(generated)};
        }
        sent += assembler.push(static_cast<int32_t>(p), out);
        (void)assembler.prompt_settled(static_cast<int32_t>(p));
      }
    }
  }
  if (!assembler.finished()) {
    std::fprintf(stderr, "completion_request_fuzzer: every choice finished, the assembler disagrees\n");
    std::abort();
  }
  if (request.stream) {
    sent += assembler.stream_end();
  } else if (auto response = assembler.response()) {
    sent += api::dump_json(*response);
  } else {
    sent += api::dump_json(response.error().to_json());
  }
}

void run(api::Endpoint endpoint, const nlohmann::ordered_json& body) {
  auto request = api::parse_completion_request(endpoint, body, kRequestLimits);
  if (!request) {
    (void)api::dump_json(request.error().to_json());  // the 400 the client gets
    return;
  }
  auto prompts = api::prepare_prompts(*request, model());
  if (!prompts) {
    (void)api::dump_json(prompts.error().to_json());
    return;
  }
  auto engine = api::make_engine_requests(*request, *prompts, kGenerationLimits, /*seed=*/42);
  if (!engine) {
    (void)api::dump_json(engine.error().to_json());
    return;
  }
  for (const EngineRequest& e : *engine) {
    if (e.prompt.empty() || e.max_tokens < 1 || e.min_tokens > e.max_tokens ||
        static_cast<int64_t>(e.prompt.size()) + e.max_tokens > kGenerationLimits.kv_cache_tokens) {
      std::fprintf(stderr, "completion_request_fuzzer: an engine request outside the limits\n");
      std::abort();
    }
  }
  if (engine->size() * request->n <= 16) assemble(*request, *engine);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)model();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto body = api::parse_json_body(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!body) {
    (void)api::dump_json(body.error().to_json());
    return 0;
  }
  run(api::Endpoint::kChatCompletions, *body);
  run(api::Endpoint::kCompletions, *body);
  return 0;
}
