// What a caller asks of the replica engine and what it gets back, incrementally.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "worker/engine/output_constraint.h"
#include "worker/sampler.h"

namespace ponder::worker {

struct EngineRequest {
  std::vector<int32_t> prompt;  // token ids, used as given (never re-tokenized)
  int32_t n = 1;                // samples; they share the prompt's KV blocks. Sample i draws with
                                // seed + i, so `n = 1, seed = S + i` reproduces it alone.
  SamplingParams sampling;
  int64_t max_tokens = 16;
  int64_t min_tokens = 0;       // EOS and stop tokens cannot be drawn before this many
  std::vector<int32_t> stop_token_ids;
  std::vector<std::string> stop;  // stop strings, matched across token boundaries
  bool ignore_eos = false;
  // Thinking budget (needs EngineOptions::think_end): generation starts inside the thinking
  // block when `thinking` (the chat template opened it).
  bool thinking = false;
  int64_t max_thinking_tokens = -1;  // at this many, the engine inserts the end delimiter
  int64_t min_thinking_tokens = 0;   // the end delimiter cannot be drawn before this many
  int32_t extend_thinking = 0;       // s1 budget forcing: replace the first N end delimiters
                                     // the model draws by EngineOptions::wait_tokens
  // The answer's shape, enforced while sampling (after the thinking block, if any), then end of
  // sequence: what makes a tool call certain. Empty: free. Needs EngineOptions::token_bytes.
  OutputConstraint constraint;
  // Prefill-only scoring: the logprob of each of these tokens after the prompt; nothing is
  // generated.
  std::vector<int32_t> score;
};

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t cached_prompt_tokens = 0;  // prompt tokens served from the prefix cache
  int64_t completion_tokens = 0;
  int64_t thinking_tokens = 0;       // completion tokens inside the thinking block
  int64_t answer_tokens = 0;
  // Forward FLOPs spent on this sample (matmuls + attention): Engine::token_flops of every
  // position it ran through the forward pass, with the LM head counted on the rows whose logits
  // were computed (the last position of a run that draws a token; the scored rows of a scoring
  // request). The prompt of an n-way request is run once, by sample 0, and positions served by
  // the prefix cache are not run: forked samples start at 0, and a recomputed (preempted)
  // sequence counts its positions again.
  double flops = 0;
  // What this sample would cost alone: one uncached, unshared, never-preempted run of its
  // prompt and completion, i.e. token_flops(p, logits) for every position p from 0 to the last
  // one a standalone run puts through the forward pass (not the final completion token, which
  // no forward pass reads), where `logits` holds at the position each token is drawn from —
  // the last prompt position, then the last position of each later step (a run of inserted
  // tokens such as "</think>" or "Wait" has logits only at its end) — and, for scoring
  // requests, at the rows of the scored tokens. Equals `flops` for an n = 1 request that met no
  // prefix cache hit and no preemption, and is the same for equal requests whatever the cache
  // held; sample i of n equals the n = 1 request with seed + i.
  double nominal_flops = 0;
};

struct EngineOutput {
  int64_t request_id = 0;
  int32_t index = 0;               // which of the n samples
  std::vector<int32_t> tokens;     // new since this sample's previous output
  std::vector<float> logprobs;     // per new token (NaN for tokens the engine inserted)
  // Per new token, the sampling.top_logprobs most likely tokens (empty when not asked for, and
  // for tokens the engine inserted).
  std::vector<std::vector<TokenLogprob>> top_logprobs;
  std::vector<float> scores;       // scoring requests: one logprob per `score` token
  bool finished = false;
  std::string finish_reason;       // "stop", "length", "cancelled", "pruned", "scored", "error"
  std::string stop_string;         // the stop string that ended it, if any
  int64_t stop_text_offset = -1;   // byte offset of that string in the sample's text
  Usage usage;                     // on the final output
  std::string error;               // finish_reason "error": what went wrong
};

}  // namespace ponder::worker
