// ServerContext: what the connections, routes and generation calls of one HttpServer share —
// options, the model's text, the dispatcher, metrics, the registry of live calls and sessions,
// and the gate that dispatcher callbacks pass through. Internal to coordinator/http.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <unordered_map>

#include "coordinator/api/completion_request.h"
#include "coordinator/api/engine_request.h"
#include "coordinator/http/access.h"
#include "coordinator/http/http_server.h"
#include "coordinator/http/metrics.h"

namespace ponder::coordinator::http {

class Session;
class GenerationCall;

// Dispatcher callbacks run on dispatcher threads and may outlive the server: they touch the
// server only while holding `mu` with `open` set; stop() clears it before the I/O context goes.
struct CallbackGate {
  std::mutex mu;
  bool open = true;
};

struct ServerContext {
  ServerContext(ServerOptions o, const ModelText& m, Dispatcher& d)
      : options(std::move(o)), model(m), dispatcher(d) {}

  ServerOptions options;
  const ModelText& model;
  Dispatcher& dispatcher;
  api::RequestLimits request_limits;
  api::GenerationLimits generation_limits;
  int64_t created = 0;  // Unix seconds at start
  ServerMetrics metrics;
  AccessGate access{nullptr};
  std::unique_ptr<AuditLog> audit;  // null: no audit log
  std::shared_ptr<CallbackGate> gate = std::make_shared<CallbackGate>();
  std::atomic<bool> draining{false};
  std::atomic<int64_t> responses_pending{0};  // requests read whose response is not yet written

  // Live generation calls (until every sample finished) and open connections.
  std::mutex mu;
  std::condition_variable calls_changed;
  std::unordered_map<const GenerationCall*, std::shared_ptr<GenerationCall>> calls;
  std::unordered_map<const Session*, std::weak_ptr<Session>> sessions;

  // A seed for requests that give none, and response ids.
  uint64_t random_u64() {
    std::lock_guard<std::mutex> lock(rng_mu);
    return rng();
  }
  std::string random_id(const char* prefix);

 private:
  std::mutex rng_mu;
  std::mt19937_64 rng{std::random_device{}()};
};

}  // namespace ponder::coordinator::http
