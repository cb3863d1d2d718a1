// Per-choice detokenization, stop strings, reasoning split and logprobs.
#include "coordinator/api/choice_stream.h"

#include <span>

namespace ponder::coordinator::api {

ChoiceStream::ChoiceStream(const text::Tokenizer& tokenizer, ChoiceOptions options)
    : tokenizer_(tokenizer),
      options_(std::move(options)),
      decoder_(tokenizer, options_.skip_special_tokens),
      stop_(options_.stop, options_.include_stop_str_in_output) {
  if (options_.reasoning) parser_.emplace(*options_.reasoning);
  if (options_.tool_calls)
    tools_.emplace(options_.tool_calls->format, options_.tool_calls->functions);
}

void ChoiceStream::add_calls(text::ToolCallSplit split, ChoiceDelta* delta) {
  delta->content += split.content;
  for (text::ToolCall& call : split.calls) {
    if (calls_ > 0 && !options_.tool_calls->parallel) continue;
    ++calls_;
    delta->tool_calls.push_back(std::move(call));
  }
}

void ChoiceStream::release_content(std::string_view text, ChoiceDelta* delta) {
  if (text.empty()) return;
  if (tools_) {
    add_calls(tools_->feed(text), delta);
  } else {
    delta->content += text;
  }
}

void ChoiceStream::release(std::string_view text, ChoiceDelta* delta) {
  std::string out = stop_.feed(text);
  if (out.empty()) return;
  if (parser_) {
    text::ReasoningSplit s = parser_->feed(out);
    delta->reasoning += s.reasoning;
    release_content(s.content, delta);
  } else {
    release_content(out, delta);
  }
}

ChoiceDelta ChoiceStream::push(const worker::EngineOutput& out) {
  ChoiceDelta delta;
  if (finished_) return delta;
  const size_t n = out.tokens.size();
  // A choice that ends on an end-of-sequence or stop token leaves that token out of its text
  // (and logprobs) unless include_stop_str_in_output, as vLLM does.
  const bool drop_last = out.finished && out.finish_reason == "stop" && out.stop_string.empty() &&
                         !options_.include_stop_str_in_output && n > 0;
  for (size_t i = 0; i < n; ++i) {
    if (drop_last && i + 1 == n) break;
    const int32_t t = out.tokens[i];
    if (options_.logprobs) {
      TokenLogprobEntry e{.token = t,
                          .text = tokenizer_.decode(std::span<const int32_t>(&t, 1)),
                          .bytes = tokenizer_.token_bytes(t),
                          .logprob = i < out.logprobs.size() ? out.logprobs[i] : 0.0f,
                          .text_offset = decoded_bytes_};
      if (i < out.top_logprobs.size())
        for (const worker::TokenLogprob& alt : out.top_logprobs[i])
          e.top.push_back({.token = alt.token,
                           .text = tokenizer_.decode(std::span<const int32_t>(&alt.token, 1)),
                           .bytes = tokenizer_.token_bytes(alt.token),
                           .logprob = alt.logprob});
      delta.logprobs.push_back(std::move(e));
    }
    std::string piece = decoder_.push(t);
    decoded_bytes_ += static_cast<int64_t>(piece.size());
    release(piece, &delta);
  }
  if (!out.finished) return delta;
  finished_ = true;
  release(decoder_.flush(), &delta);
  std::string rest = stop_.finish();
  if (parser_) {
    text::ReasoningSplit s = parser_->feed(rest);
    s.append(parser_->finish());
    delta.reasoning += s.reasoning;
    release_content(s.content, &delta);
  } else {
    release_content(rest, &delta);
  }
  if (tools_) add_calls(tools_->finish(), &delta);
  delta.finished = true;
  // A stop string found in the text ends the choice with "stop", also where the engine, which
  // matches raw token bytes (special tokens included), did not see it and ran on (to its
  // max_tokens, or until the server cancelled the rest of the choice).
  const bool ran_on = out.finish_reason == "length" || out.finish_reason == "cancelled";
  delta.finish_reason = stop_.matched() && ran_on ? "stop" : out.finish_reason;
  // An answer that ended by itself after calling tools waits for their results.
  if (calls_ > 0 && delta.finish_reason == "stop") delta.finish_reason = "tool_calls";
  delta.stop_reason = stop_.matched() ? stop_.match() : out.stop_string;
  delta.error = out.error;
  delta.usage = out.usage;
  return delta;
}

}  // namespace ponder::coordinator::api
