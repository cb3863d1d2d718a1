#include "coordinator/replicas/wire.h"

namespace ponder::coordinator {

wire::Submit to_wire(int64_t request_id, const worker::EngineRequest& r) {
  wire::Submit s;
  s.set_request_id(request_id);
  s.mutable_prompt()->Add(r.prompt.begin(), r.prompt.end());
  s.set_n(r.n);
  wire::Sampling* p = s.mutable_sampling();
  const worker::SamplingParams& q = r.sampling;
  p->set_temperature(q.temperature);
  p->set_top_k(q.top_k);
  p->set_top_p(q.top_p);
  p->set_min_p(q.min_p);
  p->set_repetition_penalty(q.repetition_penalty);
  p->set_presence_penalty(q.presence_penalty);
  p->set_frequency_penalty(q.frequency_penalty);
  p->set_seed(q.seed);
  p->set_top_logprobs(q.top_logprobs);
  p->set_resumed_tail(q.resumed_tail);
  p->mutable_resumed_draws()->Add(q.resumed_draws.begin(), q.resumed_draws.end());
  for (const auto& [token, bias] : q.logit_bias) {
    wire::LogitBias* b = p->add_logit_bias();
    b->set_token(token);
    b->set_bias(bias);
  }
  s.set_max_tokens(r.max_tokens);
  s.set_min_tokens(r.min_tokens);
  s.mutable_stop_token_ids()->Add(r.stop_token_ids.begin(), r.stop_token_ids.end());
  for (const std::string& stop : r.stop) s.add_stop(stop);
  s.set_ignore_eos(r.ignore_eos);
  s.set_thinking(r.thinking);
  s.set_max_thinking_tokens(r.max_thinking_tokens);
  s.set_min_thinking_tokens(r.min_thinking_tokens);
  s.set_extend_thinking(r.extend_thinking);
  s.mutable_score()->Add(r.score.begin(), r.score.end());
  for (const worker::OutputConstraint::Segment& seg : r.constraint.segments) {
    wire::ConstraintSegment* c = s.add_constraint();
    c->set_kind(static_cast<wire::ConstraintSegment::Kind>(seg.kind));
    for (const std::string& t : seg.texts) c->add_texts(t);
  }
  return s;
}

worker::EngineRequest from_wire(const wire::Submit& s) {
  const wire::Sampling& p = s.sampling();
  worker::EngineRequest r{
      .prompt = {s.prompt().begin(), s.prompt().end()},
      .n = s.n(),
      .sampling = {.temperature = p.temperature(),
                   .top_k = p.top_k(),
                   .top_p = p.top_p(),
                   .min_p = p.min_p(),
                   .repetition_penalty = p.repetition_penalty(),
                   .presence_penalty = p.presence_penalty(),
                   .frequency_penalty = p.frequency_penalty(),
                   .seed = p.seed(),
                   .top_logprobs = p.top_logprobs()},
      .max_tokens = s.max_tokens(),
      .min_tokens = s.min_tokens(),
      .stop_token_ids = {s.stop_token_ids().begin(), s.stop_token_ids().end()},
      .stop = {s.stop().begin(), s.stop().end()},
      .ignore_eos = s.ignore_eos(),
      .thinking = s.thinking(),
      .max_thinking_tokens = s.max_thinking_tokens(),
      .min_thinking_tokens = s.min_thinking_tokens(),
      .extend_thinking = s.extend_thinking(),
      .score = {s.score().begin(), s.score().end()}};
  for (const wire::LogitBias& b : p.logit_bias()) r.sampling.logit_bias.emplace_back(b.token(), b.bias());
  r.sampling.resumed_tail = p.resumed_tail();
  r.sampling.resumed_draws.assign(p.resumed_draws().begin(), p.resumed_draws().end());
  for (const wire::ConstraintSegment& c : s.constraint())
    r.constraint.segments.push_back({.kind = static_cast<worker::OutputConstraint::Kind>(c.kind()),
                                     .texts = {c.texts().begin(), c.texts().end()}});
  return r;
}

wire::Tokens to_wire(const worker::EngineOutput& o) {
  wire::Tokens t;
  t.set_request_id(o.request_id);
  t.set_index(o.index);
  t.mutable_tokens()->Add(o.tokens.begin(), o.tokens.end());
  t.mutable_logprobs()->Add(o.logprobs.begin(), o.logprobs.end());
  for (const auto& top : o.top_logprobs) {
    wire::TopLogprobs* w = t.add_top_logprobs();
    for (const worker::TokenLogprob& tl : top) {
      w->add_tokens(tl.token);
      w->add_logprobs(tl.logprob);
    }
  }
  t.mutable_scores()->Add(o.scores.begin(), o.scores.end());
  t.set_finished(o.finished);
  t.set_finish_reason(o.finish_reason);
  t.set_stop_string(o.stop_string);
  t.set_stop_text_offset(o.stop_text_offset);
  if (o.finished) {
    wire::Usage* u = t.mutable_usage();
    u->set_prompt_tokens(o.usage.prompt_tokens);
    u->set_cached_prompt_tokens(o.usage.cached_prompt_tokens);
    u->set_completion_tokens(o.usage.completion_tokens);
    u->set_thinking_tokens(o.usage.thinking_tokens);
    u->set_answer_tokens(o.usage.answer_tokens);
    u->set_flops(o.usage.flops);
    u->set_nominal_flops(o.usage.nominal_flops);
  }
  t.set_error(o.error);
  return t;
}

worker::EngineOutput from_wire(const wire::Tokens& t) {
  worker::EngineOutput o{.request_id = t.request_id(),
                         .index = t.index(),
                         .tokens = {t.tokens().begin(), t.tokens().end()},
                         .logprobs = {t.logprobs().begin(), t.logprobs().end()},
                         .scores = {t.scores().begin(), t.scores().end()},
                         .finished = t.finished(),
                         .finish_reason = t.finish_reason(),
                         .stop_string = t.stop_string(),
                         .stop_text_offset = t.stop_text_offset(),
                         .usage = {.prompt_tokens = t.usage().prompt_tokens(),
                                   .cached_prompt_tokens = t.usage().cached_prompt_tokens(),
                                   .completion_tokens = t.usage().completion_tokens(),
                                   .thinking_tokens = t.usage().thinking_tokens(),
                                   .answer_tokens = t.usage().answer_tokens(),
                                   .flops = t.usage().flops(),
                                   .nominal_flops = t.usage().nominal_flops()},
                         .error = t.error()};
  for (const wire::TopLogprobs& w : t.top_logprobs()) {
    auto& top = o.top_logprobs.emplace_back();
    for (int i = 0; i < w.tokens_size() && i < w.logprobs_size(); ++i)
      top.push_back({.token = w.tokens(i), .logprob = w.logprobs(i)});
  }
  return o;
}

wire::Heartbeat to_wire(const worker::EngineStats& s, bool ranks_ok) {
  wire::Heartbeat h;
  h.set_waiting(s.waiting);
  h.set_running(s.running);
  h.set_kv_blocks_used(s.kv_blocks_used);
  h.set_kv_blocks_free(s.kv_blocks_free);
  h.set_prefix_cache_queries(s.prefix_cache_queries);
  h.set_prefix_cache_hits(s.prefix_cache_hits);
  h.set_tokens_generated(s.tokens_generated);
  h.set_preemptions(s.preemptions);
  h.set_prefills(s.prefills);
  h.set_prompt_tokens_computed(s.prompt_tokens_computed);
  h.set_ranks_ok(ranks_ok);
  return h;
}

zmq::message_t encode(wire::Envelope envelope) {
  envelope.set_version(kProtocolVersion);
  std::string bytes = envelope.SerializeAsString();
  return zmq::message_t(bytes.data(), bytes.size());
}

Expected<wire::Envelope> decode(const zmq::message_t& frame) {
  wire::Envelope e;
  if (!e.ParseFromArray(frame.data(), static_cast<int>(frame.size())))
    return error(StatusCode::kInvalidArgument, "replica protocol: a %zu-byte frame does not parse",
                 frame.size());
  if (e.version() != kProtocolVersion)
    return error(StatusCode::kFailedPrecondition,
                 "replica protocol version %u refused: this side speaks version %u", e.version(),
                 kProtocolVersion);
  return e;
}

wire::Envelope error_envelope(const Status& status, int64_t request_id, bool fatal) {
  wire::Envelope e;
  wire::Error* err = e.mutable_error();
  err->set_request_id(request_id);
  err->set_code(static_cast<int32_t>(status.code()));
  err->set_message(status.message());
  err->set_fatal(fatal);
  return e;
}

Status status_from_wire(const wire::Error& e) {
  StatusCode code = static_cast<StatusCode>(e.code());
  if (e.code() <= 0 || e.code() > static_cast<int32_t>(StatusCode::kInternal)) code = StatusCode::kRemote;
  return Status(code, e.message());
}

}  // namespace ponder::coordinator
