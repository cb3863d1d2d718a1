// Deep health: GET /health?generate=true answers only after a one-token greedy generation went
// through a replica (the whole path: dispatcher, replica link, engine, sampler), with its latency;
// 503 + Retry-After with the reason when it fails or takes longer than kHealthProbeTimeout.
// Internal to coordinator/http; runs on the session's strand.
#pragma once

#include <chrono>
#include <memory>
#include <string_view>

#include "coordinator/http/server_context.h"

namespace ponder::coordinator::http {

class Session;

inline constexpr std::chrono::seconds kHealthProbeTimeout{10};

// Whether a /health target asks for the deep check (?generate=true or ?generate=1).
bool wants_generation_probe(std::string_view target);
void start_health_probe(std::shared_ptr<Session> session, ServerContext& ctx);

}  // namespace ponder::coordinator::http
