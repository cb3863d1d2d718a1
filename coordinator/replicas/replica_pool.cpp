#include "coordinator/replicas/replica_pool.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <map>

#include <zmq.hpp>

#include "common/check.h"
#include "common/log.h"
#include "common/strings.h"
#include "coordinator/replicas/curve_authenticator.h"
#include "coordinator/replicas/wire.h"
#include "coordinator/router/router.h"

namespace ponder::coordinator {

using Clock = std::chrono::steady_clock;

namespace {

struct Replica {
  std::string identity;  // the ROUTER's routing id for it
  std::string id;        // "r1", "r2", … in registration order
  wire::Register info;
  bool alive = true;
  bool retired = false;      // replaced by a new registration of its replica_index
  bool unreachable = false;  // a send found its connection gone: lost at the end of this turn
  Clock::time_point last_heard;
  wire::Heartbeat load;
  PrefixIndex prefixes;
  int64_t outstanding = 0;  // tokens still to process for placements on it
  int64_t requests = 0;
};

struct Sample {
  std::vector<int32_t> generated;
  std::vector<int32_t> drawn;  // the generated tokens the sampler drew (finite logprob), in order
  bool finished = false;
  bool moved = false;
  worker::Usage carried;  // tokens generated before the sample moved
};

struct Request {
  int64_t id = 0;
  worker::EngineRequest request;
  ReplicaPool::OutputFn fn;
  std::vector<Sample> samples;
  int32_t live = 0;  // unfinished samples
  bool cancelled = false;
};

// A request, or some of its samples, on one replica under one wire id.
struct Placement {
  int64_t request_id = 0;
  int32_t first_index = 0;  // the placement's sample j is the request's first_index + j
  int32_t count = 0;
  int32_t live = 0;
  size_t replica = 0;
  int64_t cost_left = 0;
  int64_t prompt_tokens = 0;
  bool started = false;
};

// Samples [first, first + count) of a request as `request`, waiting for a replica to be alive.
struct Parked {
  int64_t request_id = 0;
  int32_t first = 0;
  int32_t count = 0;
  worker::EngineRequest request;
  Clock::time_point until;
};

}  // namespace

struct ReplicaPool::State {
  zmq::context_t context{1};
  std::unique_ptr<CurveAuthenticator> auth;  // destroyed after the ROUTER, before the context
  zmq::socket_t router{context, zmq::socket_type::router};
  std::vector<Replica> replicas;
  std::map<std::string, size_t> by_identity;
  std::map<int64_t, Request> requests;
  std::map<int64_t, Placement> placements;  // by wire id
  int64_t next_wire_id = 1;
  int64_t spread_requests = 0;
  std::vector<Parked> parked;
  bool all_slots_failed = false;  // a supervisor says every replica is down for good
  bool draining = false;
  Clock::time_point drain_until;
};

namespace {

bool contains_sequence(const std::vector<int32_t>& hay, const std::vector<int32_t>& needle) {
  return !needle.empty() &&
         std::search(hay.begin(), hay.end(), needle.begin(), needle.end()) != hay.end();
}

}  // namespace

Expected<std::unique_ptr<ReplicaPool>> ReplicaPool::start(ReplicaPoolOptions options) {
  std::unique_ptr<ReplicaPool> pool(new ReplicaPool());
  pool->options_ = std::move(options);
  pool->state_ = std::make_unique<State>();
  zmq::socket_t& router = pool->state_->router;
  router.set(zmq::sockopt::linger, 0);
  router.set(zmq::sockopt::router_mandatory, 1);
  if (pool->options_.curve.enabled()) {
    PONDER_ASSIGN_OR_RETURN(pool->state_->auth,
                            CurveAuthenticator::secure(pool->state_->context, router, pool->options_.curve));
  }
  try {
    router.bind(pool->options_.bind);
  } catch (const zmq::error_t& e) {
    return error(StatusCode::kInvalidArgument, "cannot bind the replica socket to %s: %s",
                 pool->options_.bind.c_str(), e.what());
  }
  pool->endpoint_ = router.get(zmq::sockopt::last_endpoint);
  pool->wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (pool->wake_fd_ < 0) return error(StatusCode::kInternal, "eventfd failed");
  PONDER_LOG(kInfo, "replicas", "waiting for replicas on %s", pool->endpoint_.c_str());
  pool->thread_ = std::thread([raw = pool.get()] { raw->run(); });
  return pool;
}

ReplicaPool::~ReplicaPool() {
  stop_ = true;
  wake();
  if (thread_.joinable()) thread_.join();
  // Whatever is still here ends now, so no caller waits forever.
  for (auto& [id, r] : state_->requests)
    for (size_t i = 0; i < r.samples.size(); ++i)
      if (!r.samples[i].finished)
        r.fn({.request_id = id, .index = static_cast<int32_t>(i), .finished = true,
              .finish_reason = "cancelled"});
  if (wake_fd_ >= 0) close(wake_fd_);
}

void ReplicaPool::wake() {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
}

Expected<int64_t> ReplicaPool::submit(worker::EngineRequest request, OutputFn on_output) {
  return submit_to("", std::move(request), std::move(on_output));
}

Expected<int64_t> ReplicaPool::submit_to(const std::string& replica_id, worker::EngineRequest request,
                                         OutputFn on_output) {
  if (request.n < 1) return error(StatusCode::kInvalidArgument, "n must be at least 1, got %d", request.n);
  if (request.prompt.empty()) return error(StatusCode::kInvalidArgument, "prompt is empty");
  {
    std::lock_guard<std::mutex> lock(snapshot_mu_);
    if (stats_.healthy_replicas == 0) return error(StatusCode::kUnavailable, "no replica is alive");
  }
  if (in_flight_.load() >= options_.max_queued)
    return error(StatusCode::kUnavailable, "%lld requests in flight: every queue is full",
                 (long long)in_flight_.load());
  const int64_t id = next_id_++;
  ++in_flight_;
  {
    std::lock_guard<std::mutex> lock(commands_mu_);
    commands_.push_back({.kind = Command::kSubmit, .id = id, .request = std::move(request),
                         .fn = std::move(on_output), .pin = replica_id});
  }
  wake();
  return id;
}

void ReplicaPool::cancel(int64_t request_id) {
  {
    std::lock_guard<std::mutex> lock(commands_mu_);
    commands_.push_back({.kind = Command::kCancel, .id = request_id});
  }
  wake();
}

void ReplicaPool::drain(std::chrono::milliseconds deadline) {
  {
    std::lock_guard<std::mutex> lock(commands_mu_);
    commands_.push_back({.kind = Command::kDrain, .deadline = deadline});
  }
  wake();
  // Replicas leave when done; give them the deadline plus a heartbeat timeout to say so.
  const auto until = Clock::now() + deadline + options_.heartbeat_timeout;
  while (Clock::now() < until) {
    {
      std::lock_guard<std::mutex> lock(snapshot_mu_);
      if (stats_.replicas == 0 && in_flight_.load() == 0) return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

Status ReplicaPool::wait_for_replicas(int count, std::chrono::milliseconds timeout) const {
  const auto until = Clock::now() + timeout;
  int64_t healthy = 0;
  while (true) {
    {
      std::lock_guard<std::mutex> lock(snapshot_mu_);
      healthy = stats_.healthy_replicas;
    }
    if (healthy >= count) return {};
    if (Clock::now() >= until) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return error(StatusCode::kTimeout, "%lld of %d replicas registered within %lld ms",
               (long long)healthy, count, (long long)timeout.count());
}

DispatcherStats ReplicaPool::stats() const {
  std::lock_guard<std::mutex> lock(snapshot_mu_);
  DispatcherStats s = stats_;
  s.requests_in_flight = in_flight_.load();
  s.replica_slots = slots_;
  for (const ReplicaSlot& slot : slots_) {
    s.replica_restarts += slot.restarts;
    if (slot.state != "healthy") ++s.replicas_down;
  }
  return s;
}

void ReplicaPool::lose(const std::string& replica_id, const std::string& why) {
  {
    std::lock_guard<std::mutex> lock(commands_mu_);
    commands_.push_back({.kind = Command::kLose, .pin = replica_id, .why = why});
  }
  wake();
}

void ReplicaPool::set_slots(std::vector<ReplicaSlot> slots) {
  std::lock_guard<std::mutex> lock(snapshot_mu_);
  slots_ = std::move(slots);
}

std::vector<ReplicaInfo> ReplicaPool::replicas() const {
  std::lock_guard<std::mutex> lock(snapshot_mu_);
  return replicas_;
}

namespace {

// Everything below runs on the pool thread.
class Loop {
 public:
  Loop(ReplicaPool::State& s, const ReplicaPoolOptions& o, std::atomic<int64_t>& in_flight)
      : s_(s), o_(o), in_flight_(in_flight) {}

  void send(const Replica& r, wire::Envelope e) { send_to(r.identity, r.id, std::move(e)); }
  void send_to(const std::string& identity, const std::string& who, wire::Envelope e) {
    try {
      s_.router.send(zmq::buffer(identity), zmq::send_flags::sndmore);
      s_.router.send(encode(std::move(e)), zmq::send_flags::none);
    } catch (const zmq::error_t& err) {
      // EHOSTUNREACH: it disconnected (its process died): lost once this turn is done, so that a
      // request placed on it in the window moves now rather than after the heartbeat timeout.
      PONDER_LOG(kWarn, "replicas", "cannot send to %s: %s", who.c_str(), err.what());
      auto it = s_.by_identity.find(identity);
      if (err.num() == EHOSTUNREACH && it != s_.by_identity.end()) s_.replicas[it->second].unreachable = true;
    }
  }

  void on_frame(const std::string& identity, const zmq::message_t& frame) {
    auto it = s_.by_identity.find(identity);
    auto envelope = decode(frame);
    if (!envelope) {
      PONDER_LOG(kWarn, "replicas", "refused a message: %s", envelope.error().to_string().c_str());
      send_to(identity, "an unregistered peer", error_envelope(envelope.error(), 0, true));
      if (it != s_.by_identity.end()) lose(it->second, envelope.error().message());
      return;
    }
    const wire::Envelope& e = *envelope;
    if (e.body_case() == wire::Envelope::kRegister) {
      const char* key = zmq_msg_gets(frame.handle(), "User-Id");  // the CURVE key's name (ZAP)
      register_replica(identity, e.register_(), key && *key ? key : "");
      return;
    }
    if (it == s_.by_identity.end() || !s_.replicas[it->second].alive) {
      send_to(identity, "an unregistered peer",
              error_envelope(Status(StatusCode::kFailedPrecondition, "not registered"), 0, true));
      return;
    }
    Replica& r = s_.replicas[it->second];
    r.last_heard = Clock::now();
    switch (e.body_case()) {
      case wire::Envelope::kHeartbeat: {
        r.load = e.heartbeat();
        wire::Envelope ack;
        ack.mutable_heartbeat();
        send(r, std::move(ack));
        break;
      }
      case wire::Envelope::kTokens:
        on_tokens(r, e.tokens());
        break;
      case wire::Envelope::kError: {
        Status st = status_from_wire(e.error());
        if (e.error().fatal()) {
          lose(it->second, st.to_string());
        } else {
          refused(e.error().request_id(), st);
        }
        break;
      }
      default:
        PONDER_LOG(kWarn, "replicas", "%s sent an unexpected message %d", r.id.c_str(),
                   static_cast<int>(e.body_case()));
    }
  }

  void register_replica(const std::string& identity, const wire::Register& reg, const std::string& key) {
    if (!o_.model.empty() && reg.model() != o_.model) {
      send_to(identity, "a replica of another model", error_envelope(Status(StatusCode::kInvalidArgument,
                                           strformat("this coordinator serves '%s', not '%s'",
                                                     o_.model.c_str(), reg.model().c_str())),
                                    0, true));
      return;
    }
    if (s_.draining) {
      send_to(identity, "a late replica",
              error_envelope(Status(StatusCode::kUnavailable, "the coordinator is draining"), 0, true));
      return;
    }
    Replica r{.identity = identity,
              .id = strformat("r%zu", s_.replicas.size() + 1),
              .info = reg,
              .last_heard = Clock::now()};
    r.load.set_ranks_ok(true);
    const size_t index = s_.replicas.size();
    s_.by_identity[identity] = index;
    s_.replicas.push_back(std::move(r));
    const Replica& added = s_.replicas.back();
    PONDER_LOG(kInfo, "replicas", "%s registered: %s (pid %lld), tp%d pp%d, %lld KV blocks%s%s",
               added.id.c_str(), reg.name().c_str(), (long long)reg.pid(), reg.tp(), reg.pp(),
               (long long)reg.kv_blocks(), key.empty() ? "" : ", CURVE key ", key.c_str());
    wire::Envelope ok;
    ok.mutable_registered()->set_replica_id(added.id);
    ok.mutable_registered()->set_heartbeat_ms(static_cast<int32_t>(o_.heartbeat.count()));
    send(added, std::move(ok));
    if (o_.replace_same_index) retire_index(reg.replica_index(), index);
  }

  // A restarted replica registered as `kept`: every earlier one of its replica_index is lost (its
  // samples move, possibly onto the new one) and forgotten.
  void retire_index(int32_t replica_index, size_t kept) {
    for (size_t i = 0; i < s_.replicas.size(); ++i) {
      Replica& old = s_.replicas[i];
      if (i == kept || old.retired || old.info.replica_index() != replica_index) continue;
      lose(i, strformat("replica %d registered again as %s", replica_index, s_.replicas[kept].id.c_str()));
      s_.replicas[i].retired = true;
      auto it = s_.by_identity.find(s_.replicas[i].identity);
      if (it != s_.by_identity.end() && it->second == i) s_.by_identity.erase(it);
    }
  }

  // Replicas a send found disconnected.
  void lose_unreachable() {
    for (size_t i = 0; i < s_.replicas.size(); ++i)
      if (s_.replicas[i].unreachable && s_.replicas[i].alive) lose(i, "its connection is gone (the process died?)");
  }

  void place_new(Request& r) {
    place(r, 0, r.request.n, r.request);
  }

  // Sends samples [first, first + count) of `r` as `request` to the replica the router picks, or
  // spread over several when they would wait there for a sequence slot (place_samples). A part
  // keeps its samples' seeds (sample j of `request` draws with seed + j wherever it runs).
  void place(Request& r, int32_t first, int32_t count, const worker::EngineRequest& request) {
    const auto hashes = prompt_block_hashes(request.prompt, 16);
    std::vector<int64_t> live(s_.replicas.size(), 0);
    for (const auto& [id, p] : s_.placements) live[p.replica] += p.live;
    std::vector<ReplicaLoad> loads;
    for (size_t i = 0; i < s_.replicas.size(); ++i) {
      const Replica& rep = s_.replicas[i];
      loads.push_back({.healthy = rep.alive && rep.load.ranks_ok() && !s_.draining,
                       .outstanding_tokens = rep.outstanding,
                       .cached_prompt_tokens = rep.prefixes.matched_blocks(hashes) * 16,
                       .free_slots = rep.info.max_running() - live[i]});
    }
    const int64_t prompt_tokens = static_cast<int64_t>(request.prompt.size());
    const std::vector<SamplePlacement> parts = place_samples(loads, prompt_tokens, count);
    if (parts.empty()) {
      if (o_.hold_unplaced.count() > 0 && !s_.draining && !s_.all_slots_failed) {
        PONDER_LOG(kInfo, "replicas", "request %lld: %d samples wait for a replica (none is alive)",
                   (long long)r.id, count);
        s_.parked.push_back({.request_id = r.id, .first = first, .count = count, .request = request,
                             .until = Clock::now() + o_.hold_unplaced});
        return;
      }
      end_unplaced(r, first, count);
      return;
    }
    int32_t at = first;
    for (const SamplePlacement& part : parts) {
      worker::EngineRequest sub = request;
      sub.n = part.count;
      sub.sampling.seed = request.sampling.seed + static_cast<uint64_t>(at - first);
      send_placement(r, at, sub, part.replica, hashes);
      at += part.count;
    }
    if (parts.size() > 1) ++s_.spread_requests;
    if (parts.size() > 1)
      PONDER_LOG(kDebug, "replicas", "request %lld: %d samples spread over %zu replicas",
                 (long long)r.id, count, parts.size());
  }

  // Samples [first, first + request.n) of `r` on replica `index` under a new wire id.
  void send_placement(Request& r, int32_t first, const worker::EngineRequest& request, size_t index,
                      const std::vector<uint64_t>& hashes) {
    Replica& rep = s_.replicas[index];
    const int64_t wire_id = s_.next_wire_id++;
    const int64_t prompt_tokens = static_cast<int64_t>(request.prompt.size());
    const int64_t cost = prompt_tokens + static_cast<int64_t>(request.n) * request.max_tokens;
    s_.placements[wire_id] = {.request_id = r.id, .first_index = first, .count = request.n,
                              .live = request.n, .replica = index, .cost_left = cost,
                              .prompt_tokens = prompt_tokens};
    rep.outstanding += cost;
    ++rep.requests;
    rep.prefixes.record(hashes);
    wire::Envelope e;
    *e.mutable_submit() = to_wire(wire_id, request);
    send(rep, std::move(e));
  }

  void on_tokens(Replica& rep, const wire::Tokens& t) {
    auto pit = s_.placements.find(t.request_id());
    if (pit == s_.placements.end()) return;  // a placement already moved or failed
    Placement& p = pit->second;
    if (&s_.replicas[p.replica] != &rep) return;
    auto rit = s_.requests.find(p.request_id);
    if (rit == s_.requests.end()) return;
    Request& r = rit->second;
    worker::EngineOutput out = from_wire(t);
    out.request_id = r.id;
    // In 64 bits: a replica's bad index must not overflow (undefined) before the bounds check.
    const int64_t index = static_cast<int64_t>(p.first_index) + t.index();
    if (index < 0 || index >= static_cast<int64_t>(r.samples.size())) return;
    out.index = static_cast<int32_t>(index);
    Sample& sample = r.samples[out.index];
    if (sample.finished) return;
    int64_t done = static_cast<int64_t>(out.tokens.size());
    if (!p.started) {
      done += p.prompt_tokens;
      p.started = true;
    }
    done = std::min(done, p.cost_left);
    p.cost_left -= done;
    rep.outstanding -= done;
    sample.generated.insert(sample.generated.end(), out.tokens.begin(), out.tokens.end());
    // Tokens the engine inserted (thinking delimiters, "Wait") have a NaN logprob: no draw.
    for (size_t k = 0; k < out.tokens.size() && k < out.logprobs.size(); ++k)
      if (!std::isnan(out.logprobs[k])) sample.drawn.push_back(out.tokens[k]);
    if (out.finished) {
      if (sample.moved) {
        worker::Usage u = out.usage;
        out.usage = sample.carried;
        out.usage.cached_prompt_tokens = std::min(u.cached_prompt_tokens, sample.carried.prompt_tokens);
        out.usage.completion_tokens += u.completion_tokens;
        out.usage.thinking_tokens += u.thinking_tokens;
        out.usage.answer_tokens += u.answer_tokens;
        out.usage.flops += u.flops;
        out.usage.nominal_flops += u.nominal_flops;
      }
      if (--p.live == 0) close_placement(pit);
    }
    deliver(r, std::move(out));
  }

  // The replica refused a placement (draining, or the request itself is bad).
  void refused(int64_t wire_id, const Status& st) {
    auto pit = s_.placements.find(wire_id);
    if (pit == s_.placements.end()) return;
    Placement p = pit->second;
    close_placement(pit);
    auto rit = s_.requests.find(p.request_id);
    if (rit == s_.requests.end()) return;
    Request& r = rit->second;
    if (st.code() == StatusCode::kUnavailable) {
      move(r, p);
      return;
    }
    for (int32_t i = p.first_index; i < p.first_index + p.count; ++i) fail_sample(r, i, st.message());
  }

  void close_placement(std::map<int64_t, Placement>::iterator pit) {
    Replica& rep = s_.replicas[pit->second.replica];
    rep.outstanding -= pit->second.cost_left;
    --rep.requests;
    s_.placements.erase(pit);
  }

  // The replica is gone: every unfinished sample placed on it moves to another replica.
  void lose(size_t index, const std::string& why) {
    Replica& rep = s_.replicas[index];
    if (!rep.alive) return;
    rep.alive = false;
    std::vector<Placement> orphans;
    for (auto it = s_.placements.begin(); it != s_.placements.end();) {
      if (it->second.replica == index) {
        orphans.push_back(it->second);
        it = s_.placements.erase(it);
      } else {
        ++it;
      }
    }
    rep.outstanding = 0;
    rep.requests = 0;
    if (s_.draining) {
      PONDER_LOG(kInfo, "replicas", "%s left (%s)", rep.id.c_str(), why.c_str());
    } else {
      PONDER_LOG(kError, "replicas", "%s (%s, pid %lld) is lost: %s; moving %zu placements", rep.id.c_str(),
                 rep.info.name().c_str(), (long long)rep.info.pid(), why.c_str(), orphans.size());
    }
    send(rep, error_envelope(Status(StatusCode::kUnavailable, "declared dead: " + why), 0, true));
    for (const Placement& p : orphans) {
      auto rit = s_.requests.find(p.request_id);
      if (rit != s_.requests.end()) move(rit->second, p);
    }
  }

  // Each unfinished sample of `p` continues elsewhere from its prompt plus what it generated.
  void move(Request& r, const Placement& p) {
    for (int32_t i = p.first_index; i < p.first_index + p.count; ++i) {
      Sample& sample = r.samples[i];
      if (sample.finished) continue;
      if (r.cancelled || s_.draining) {
        finish_sample(r, i, "cancelled", "");
        continue;
      }
      const worker::EngineRequest& orig = r.request;
      const auto& gen = sample.generated;
      worker::EngineRequest c = orig;
      c.n = 1;
      c.sampling.seed = orig.sampling.seed + static_cast<uint64_t>(i);
      const int64_t made = static_cast<int64_t>(gen.size());
      if (!sample.moved) sample.carried.prompt_tokens = static_cast<int64_t>(orig.prompt.size());
      sample.carried.completion_tokens = made;
      // Thinking: the prompt opened the block, or the sample's output did (Qwen3 writes <think>).
      const bool opened =
          orig.thinking || (!o_.think_start.empty() && gen.size() >= o_.think_start.size() &&
                            std::equal(o_.think_start.begin(), o_.think_start.end(), gen.begin()));
      const bool closed = opened && contains_sequence(gen, o_.think_end);
      int64_t thinking = 0;
      if (opened) {
        if (closed) {
          auto at = std::search(gen.begin(), gen.end(), o_.think_end.begin(), o_.think_end.end());
          thinking = (at - gen.begin()) + static_cast<int64_t>(o_.think_end.size());
        } else {
          thinking = made;
        }
      }
      sample.carried.thinking_tokens = thinking;
      sample.carried.answer_tokens = made - thinking;
      sample.moved = true;
      if (orig.score.empty()) {
        c.prompt.insert(c.prompt.end(), gen.begin(), gen.end());
        // The sampler goes on where it was: same RNG position, same output counts.
        c.sampling.resumed_tail = static_cast<int32_t>(made);
        c.sampling.resumed_draws = sample.drawn;
        c.max_tokens = orig.max_tokens - made;
        c.min_tokens = std::max<int64_t>(0, orig.min_tokens - made);
        if (opened) {
          c.thinking = !closed;
          c.max_thinking_tokens = closed || orig.max_thinking_tokens < 0
                                      ? -1
                                      : std::max<int64_t>(0, orig.max_thinking_tokens - made);
          c.min_thinking_tokens = closed ? 0 : std::max<int64_t>(0, orig.min_thinking_tokens - made);
          if (closed) c.extend_thinking = 0;
        }
        if (c.max_tokens <= 0) {
          worker::EngineOutput out{.request_id = r.id, .index = i, .finished = true,
                                   .finish_reason = "length", .usage = sample.carried};
          sample.finished = true;
          --r.live;
          deliver_only(r, out);
          continue;
        }
      }
      PONDER_LOG(kInfo, "replicas", "request %lld sample %d continues elsewhere after %lld tokens",
                 (long long)r.id, i, (long long)made);
      place(r, i, 1, c);
    }
    retire_if_done(r.id);
  }

  // No replica takes samples [first, first + count): one with nothing generated yet is refused
  // like a new request (503: retry); one cut off mid-generation fails.
  void end_unplaced(Request& r, int32_t first, int32_t count) {
    for (int32_t i = first; i < first + count; ++i)
      if (r.samples[i].generated.empty())
        finish_sample(r, i, "cancelled", "no replica is alive to take the request");
      else
        fail_sample(r, i, "no replica is alive to take the request");
  }

  // Parked samples go to a replica that is alive again, or end (cancelled, drained, waited long
  // enough, every supervised replica failed).
  void retry_parked() {
    if (s_.parked.empty()) return;
    bool any = false;
    for (const Replica& rep : s_.replicas) any = any || (rep.alive && rep.load.ranks_ok());
    const auto now = Clock::now();
    std::vector<Parked> parked;
    parked.swap(s_.parked);
    for (Parked& p : parked) {
      auto rit = s_.requests.find(p.request_id);
      if (rit == s_.requests.end()) continue;
      Request& r = rit->second;
      if (r.cancelled || s_.draining) {
        for (int32_t i = p.first; i < p.first + p.count; ++i) finish_sample(r, i, "cancelled", "");
      } else if (any) {
        place(r, p.first, p.count, p.request);
      } else if (now >= p.until || s_.all_slots_failed) {
        end_unplaced(r, p.first, p.count);
      } else {
        s_.parked.push_back(std::move(p));
        continue;
      }
      retire_if_done(p.request_id);
    }
  }

  void fail_sample(Request& r, int32_t i, const std::string& why) {
    finish_sample(r, i, "error", why);
  }

  void finish_sample(Request& r, int32_t i, const std::string& reason, const std::string& why) {
    Sample& sample = r.samples[i];
    if (sample.finished) return;
    worker::EngineOutput out{.request_id = r.id, .index = i, .finished = true, .finish_reason = reason,
                             .usage = sample.carried, .error = why};
    out.usage.prompt_tokens = static_cast<int64_t>(r.request.prompt.size());
    out.usage.completion_tokens = static_cast<int64_t>(sample.generated.size());
    sample.finished = true;
    --r.live;
    deliver_only(r, out);
  }

  // Hands an output to the submitter and retires the request after its last sample.
  void deliver(Request& r, worker::EngineOutput out) {
    if (out.finished) {
      r.samples[out.index].finished = true;
      --r.live;
    }
    deliver_only(r, out);
    retire_if_done(r.id);
  }
  void deliver_only(Request& r, const worker::EngineOutput& out) {
    if (r.fn) r.fn(out);
  }
  void retire_if_done(int64_t id) {
    auto it = s_.requests.find(id);
    if (it == s_.requests.end() || it->second.live > 0) return;
    s_.requests.erase(it);
    --in_flight_;
  }

  void on_submit(int64_t id, worker::EngineRequest request, ReplicaPool::OutputFn fn, const std::string& pin) {
    Request& r = s_.requests[id];
    r.id = id;
    r.samples.resize(request.n);
    r.live = request.n;
    r.request = std::move(request);
    r.fn = std::move(fn);
    if (s_.draining) {
      for (int32_t i = 0; i < r.request.n; ++i) finish_sample(r, i, "cancelled", "");
      retire_if_done(id);
      return;
    }
    if (pin.empty()) {
      place_new(r);
    } else {
      auto it = std::find_if(s_.replicas.begin(), s_.replicas.end(),
                             [&](const Replica& rep) { return rep.id == pin && rep.alive; });
      if (it == s_.replicas.end()) {
        for (int32_t i = 0; i < r.request.n; ++i) fail_sample(r, i, "replica " + pin + " is not alive");
      } else {
        send_placement(r, 0, r.request, static_cast<size_t>(it - s_.replicas.begin()),
                       prompt_block_hashes(r.request.prompt, 16));
      }
    }
    retire_if_done(id);
  }

  void on_cancel(int64_t id) {
    auto it = s_.requests.find(id);
    if (it == s_.requests.end()) return;
    it->second.cancelled = true;
    for (const auto& [wire_id, p] : s_.placements) {
      if (p.request_id != id) continue;
      wire::Envelope e;
      e.mutable_cancel()->set_request_id(wire_id);
      send(s_.replicas[p.replica], std::move(e));
    }
  }

  void on_drain(std::chrono::milliseconds deadline) {
    s_.draining = true;
    for (const Replica& rep : s_.replicas) {
      if (!rep.alive) continue;
      wire::Envelope e;
      e.mutable_drain()->set_deadline_ms(static_cast<int32_t>(deadline.count()));
      send(rep, std::move(e));
    }
  }

  void on_lose(const std::string& replica_id, const std::string& why) {
    for (size_t i = 0; i < s_.replicas.size(); ++i)
      if (s_.replicas[i].id == replica_id && !s_.replicas[i].retired) lose(i, why);
  }

  void check_heartbeats() {
    const auto now = Clock::now();
    for (size_t i = 0; i < s_.replicas.size(); ++i) {
      const Replica& rep = s_.replicas[i];
      if (rep.alive && now - rep.last_heard > o_.heartbeat_timeout)
        lose(i, strformat("no heartbeat for %lld ms",
                          (long long)std::chrono::duration_cast<std::chrono::milliseconds>(now - rep.last_heard).count()));
    }
  }

  DispatcherStats snapshot(std::vector<ReplicaInfo>* infos) const {
    DispatcherStats st;
    for (const Replica& rep : s_.replicas) {
      // Counters count every replica there was, lost ones with their last heartbeat's figures, so
      // that they never go down when a replica is lost or replaced.
      st.prefix_cache_queries += rep.load.prefix_cache_queries();
      st.prefix_cache_hits += rep.load.prefix_cache_hits();
      st.tokens_generated += rep.load.tokens_generated();
      st.preemptions += rep.load.preemptions();
      st.prefills += rep.load.prefills();
      st.prompt_tokens_computed += rep.load.prompt_tokens_computed();
      if (!rep.alive) continue;
      ++st.replicas;
      if (rep.load.ranks_ok()) ++st.healthy_replicas;
      st.waiting += rep.load.waiting();
      st.running += rep.load.running();
      st.kv_blocks_used += rep.load.kv_blocks_used();
      st.kv_blocks_free += rep.load.kv_blocks_free();
      const int64_t kv_tokens = rep.info.kv_blocks() * rep.info.block_size();
      if (st.kv_tokens_per_replica == 0 || kv_tokens < st.kv_tokens_per_replica) st.kv_tokens_per_replica = kv_tokens;
      st.kv_bytes_per_token = std::max(st.kv_bytes_per_token, rep.info.kv_bytes_per_token());
    }
    if (s_.draining) st.healthy_replicas = 0;
    st.spread_requests = s_.spread_requests;
    st.replica_link_refusals = s_.auth ? s_.auth->refused() : 0;
    for (const Replica& rep : s_.replicas)
      if (!rep.retired)
        infos->push_back({.id = rep.id, .name = rep.info.name(), .pid = rep.info.pid(),
                          .host = rep.info.host(), .replica_index = rep.info.replica_index(),
                          .tp = rep.info.tp(), .pp = rep.info.pp(),
                          .healthy = rep.alive && rep.load.ranks_ok(), .lost = !rep.alive,
                          .requests = rep.requests});
    return st;
  }

 private:
  ReplicaPool::State& s_;
  const ReplicaPoolOptions& o_;
  std::atomic<int64_t>& in_flight_;
};

}  // namespace

void ReplicaPool::run() {
  Loop loop(*state_, options_, in_flight_);
  zmq::socket_t& router = state_->router;
  while (!stop_.load()) {
    zmq::pollitem_t items[] = {{static_cast<void*>(router), 0, ZMQ_POLLIN, 0},
                               {nullptr, wake_fd_, ZMQ_POLLIN, 0}};
    zmq::poll(items, 2, std::chrono::milliseconds(std::max<int64_t>(1, options_.heartbeat.count() / 2)));
    if (items[1].revents & ZMQ_POLLIN) {
      uint64_t count = 0;
      [[maybe_unused]] ssize_t n = read(wake_fd_, &count, sizeof(count));
    }
    std::deque<Command> commands;
    {
      std::lock_guard<std::mutex> lock(commands_mu_);
      commands.swap(commands_);
    }
    for (Command& c : commands) {
      switch (c.kind) {
        case Command::kSubmit: loop.on_submit(c.id, std::move(c.request), std::move(c.fn), c.pin); break;
        case Command::kCancel: loop.on_cancel(c.id); break;
        case Command::kDrain: loop.on_drain(c.deadline); break;
        case Command::kLose: loop.on_lose(c.pin, c.why); break;
      }
    }
    while (true) {
      zmq::message_t identity, frame;
      if (!router.recv(identity, zmq::recv_flags::dontwait)) break;
      if (!identity.more() || !router.recv(frame, zmq::recv_flags::none)) continue;
      while (frame.more()) {  // a peer sending more frames than one envelope: drop the rest
        zmq::message_t extra;
        if (!router.recv(extra, zmq::recv_flags::none)) break;
        if (!extra.more()) break;
      }
      loop.on_frame(identity.to_string(), frame);
    }
    loop.lose_unreachable();
    loop.check_heartbeats();
    {
      std::lock_guard<std::mutex> lock(snapshot_mu_);
      state_->all_slots_failed =
          !slots_.empty() &&
          std::all_of(slots_.begin(), slots_.end(), [](const ReplicaSlot& s) { return s.state == "failed"; });
    }
    loop.retry_parked();
    std::vector<ReplicaInfo> infos;
    DispatcherStats st = loop.snapshot(&infos);
    std::lock_guard<std::mutex> lock(snapshot_mu_);
    stats_ = st;
    replicas_ = std::move(infos);
  }
}

}  // namespace ponder::coordinator
