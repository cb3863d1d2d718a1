// The replica protocol's conversions: what the engine reports (a finished output's usage, the
// heartbeat's counters) survives the trip through an encoded envelope unchanged.
#include "coordinator/replicas/wire.h"

#include <gtest/gtest.h>

namespace ponder::coordinator {
namespace {

wire::Envelope round_trip(const wire::Envelope& e) {
  auto back = decode(encode(e));
  EXPECT_TRUE(back.has_value()) << back.error().to_string();
  return *back;
}

TEST(WireTest, FinishedOutputKeepsItsUsage) {
  worker::EngineOutput o{.request_id = 7, .index = 2, .tokens = {5, 6}, .logprobs = {-0.5f, -1.0f},
                         .finished = true, .finish_reason = "length",
                         .usage = {.prompt_tokens = 40, .cached_prompt_tokens = 32,
                                   .completion_tokens = 6, .thinking_tokens = 4,
                                   .answer_tokens = 2, .flops = 1.25e7, .nominal_flops = 3.0625e7}};
  wire::Envelope e;
  *e.mutable_tokens() = to_wire(o);
  worker::EngineOutput back = from_wire(round_trip(e).tokens());
  EXPECT_EQ(back.request_id, 7);
  EXPECT_EQ(back.index, 2);
  EXPECT_EQ(back.tokens, o.tokens);
  EXPECT_EQ(back.finish_reason, "length");
  EXPECT_EQ(back.usage.prompt_tokens, 40);
  EXPECT_EQ(back.usage.cached_prompt_tokens, 32);
  EXPECT_EQ(back.usage.completion_tokens, 6);
  EXPECT_EQ(back.usage.thinking_tokens, 4);
  EXPECT_EQ(back.usage.answer_tokens, 2);
  EXPECT_EQ(back.usage.flops, 1.25e7);
  EXPECT_EQ(back.usage.nominal_flops, 3.0625e7);
}

TEST(WireTest, SubmitKeepsItsConstraint) {
  using Kind = worker::OutputConstraint::Kind;
  worker::EngineRequest r{.prompt = {1, 2}, .max_tokens = 9};
  r.constraint.segments = {{Kind::kSpace, {}},
                           {Kind::kLiteral, {"<tool_call>"}},
                           {Kind::kOneOf, {"a", "b"}},
                           {Kind::kJsonObject, {}},
                           {Kind::kLiteral, {"</tool_call>"}}};
  wire::Envelope e;
  *e.mutable_submit() = to_wire(3, r);
  worker::EngineRequest back = from_wire(round_trip(e).submit());
  ASSERT_EQ(back.constraint.segments.size(), r.constraint.segments.size());
  for (size_t i = 0; i < r.constraint.segments.size(); ++i) {
    EXPECT_EQ(back.constraint.segments[i].kind, r.constraint.segments[i].kind);
    EXPECT_EQ(back.constraint.segments[i].texts, r.constraint.segments[i].texts);
  }
  EXPECT_TRUE(back.constraint.validate().ok());
}

TEST(WireTest, HeartbeatCarriesTheEngineCounters) {
  worker::EngineStats s{.waiting = 1, .running = 2, .kv_blocks_used = 3, .kv_blocks_free = 4,
                        .prefix_cache_queries = 5, .prefix_cache_hits = 6, .preemptions = 7,
                        .prefills = 9, .prompt_tokens_computed = 10, .tokens_generated = 8};
  wire::Envelope e;
  *e.mutable_heartbeat() = to_wire(s, /*ranks_ok=*/true);
  const wire::Heartbeat h = round_trip(e).heartbeat();
  EXPECT_EQ(h.waiting(), 1);
  EXPECT_EQ(h.running(), 2);
  EXPECT_EQ(h.kv_blocks_used(), 3);
  EXPECT_EQ(h.kv_blocks_free(), 4);
  EXPECT_EQ(h.prefix_cache_queries(), 5);
  EXPECT_EQ(h.prefix_cache_hits(), 6);
  EXPECT_EQ(h.preemptions(), 7);
  EXPECT_EQ(h.tokens_generated(), 8);
  EXPECT_EQ(h.prefills(), 9);
  EXPECT_EQ(h.prompt_tokens_computed(), 10);
  EXPECT_TRUE(h.ranks_ok());
}

}  // namespace
}  // namespace ponder::coordinator
