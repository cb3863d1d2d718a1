// Prompts as the engine takes them: chat messages rendered through the model's chat template and
// tokenized, or completion prompts tokenized (token-id prompts used as given), each with whether
// generation starts inside the thinking block.
#pragma once

#include <cstdint>
#include <vector>

#include "coordinator/api/api_error.h"
#include "coordinator/api/completion_request.h"
#include "coordinator/model_text.h"

namespace ponder::coordinator::api {

struct PreparedPrompt {
  std::vector<int32_t> ids;
  bool opens_reasoning = false;  // the prompt leaves the thinking block open
};

// Chat: one prompt. A template that fails on an assistant message's `"content": null` (Qwen3's
// concatenates it with strings) is rendered again with those contents as "" — templates that
// test for None (DeepSeek-V3's tool calls) see null first and succeed. Completions: one prompt
// per input, text with BOS when the tokenizer asks for it. Errors name "messages" or "prompt".
ApiResult<std::vector<PreparedPrompt>> prepare_prompts(const CompletionRequest& request,
                                                       const ModelText& model);

}  // namespace ponder::coordinator::api
