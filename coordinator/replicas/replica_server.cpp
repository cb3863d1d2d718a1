#include "coordinator/replicas/replica_server.h"

#include <unistd.h>

#include <map>
#include <vector>

#include <zmq.hpp>

#include "common/check.h"
#include "common/log.h"
#include "coordinator/replicas/link_monitor.h"
#include "coordinator/replicas/wire.h"

namespace ponder::coordinator {
namespace {

using Clock = std::chrono::steady_clock;

class ReplicaServer {
 public:
  ReplicaServer(worker::Engine& engine, const ReplicaServerOptions& options,
                std::function<Status()> ping)
      : engine_(engine), o_(options), ping_(std::move(ping)), socket_(context_, zmq::socket_type::dealer) {}

  Status run();

 private:
  void send(wire::Envelope e) { socket_.send(encode(std::move(e)), zmq::send_flags::none); }
  Status handle(const wire::Envelope& e);
  void submit(const wire::Submit& s);
  void forward(const worker::EngineOutput& out);
  Status heartbeat();
  Status secure_and_watch();
  Status on_link_event(const LinkEvent& event);

  worker::Engine& engine_;
  const ReplicaServerOptions& o_;
  std::function<Status()> ping_;
  zmq::context_t context_{1};
  zmq::socket_t socket_;
  // Engine request id → the coordinator's id and how many samples are still running.
  struct Live {
    int64_t coordinator_id = 0;
    int32_t samples_left = 0;
  };
  std::map<int64_t, Live> live_;
  std::map<int64_t, int64_t> engine_id_;  // coordinator id → engine id
  std::vector<worker::EngineOutput> pending_;  // outputs of the current step
  std::unique_ptr<LinkMonitor> monitor_;
  bool linked_ = false;          // a handshake completed and the connection has not dropped since
  int closed_handshakes_ = 0;    // connections dropped before their handshake completed, in a row
  bool registered_ = false;
  bool draining_ = false;
  Clock::time_point drain_deadline_, last_heard_, next_heartbeat_;
};

Status ReplicaServer::run() {
  // Long enough for the last message (drained, or failed) to leave before the process does.
  socket_.set(zmq::sockopt::linger, 2000);
  PONDER_RETURN_IF_ERROR(secure_and_watch());
  socket_.connect(o_.endpoint);
  wire::Envelope reg;
  wire::Register* r = reg.mutable_register_();
  r->set_model(o_.model);
  r->set_tp(o_.tp);
  r->set_pp(o_.pp);
  r->set_kv_blocks(o_.kv_blocks);
  r->set_kv_bytes_per_token(o_.kv_bytes_per_token);
  r->set_block_size(16);
  r->set_max_running(o_.max_running);
  r->set_max_n(o_.max_n);
  r->set_pid(getpid());
  r->set_name(o_.name);
  r->set_host(o_.host);
  r->set_replica_index(o_.replica_index);
  send(reg);
  last_heard_ = Clock::now();
  next_heartbeat_ = Clock::now();
  PONDER_LOG(kInfo, "replica", "%s: registering with %s", o_.name.c_str(), o_.endpoint.c_str());

  while (true) {
    const bool busy = registered_ && !engine_.idle();
    zmq::pollitem_t items[] = {{static_cast<void*>(socket_), 0, ZMQ_POLLIN, 0},
                               {static_cast<void*>(monitor_->socket()), 0, ZMQ_POLLIN, 0}};
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_heartbeat_ - Clock::now());
    zmq::poll(items, 2, busy ? std::chrono::milliseconds(0) : std::max(wait, std::chrono::milliseconds(0)));
    while (auto event = monitor_->next()) PONDER_RETURN_IF_ERROR(on_link_event(*event));
    zmq::message_t frame;
    while (socket_.recv(frame, zmq::recv_flags::dontwait)) {
      last_heard_ = Clock::now();
      auto e = decode(frame);
      if (!e) {
        // A peer speaking another version cannot be served; say so and stop.
        send(error_envelope(e.error(), 0, true));
        return e.error();
      }
      PONDER_RETURN_IF_ERROR(handle(*e));
    }
    if (registered_ && !engine_.idle()) {
      auto worked = engine_.step();
      if (!worked) {
        // The engine failed every request with "error": do not forward that; the coordinator
        // moves them to another replica when it hears this replica is gone.
        pending_.clear();
        send(error_envelope(worked.error(), 0, true));
        return worked.error();
      }
      for (const worker::EngineOutput& out : pending_) forward(out);
      pending_.clear();
    }
    const auto now = Clock::now();
    if (now >= next_heartbeat_) {
      Status st = heartbeat();
      if (!st.ok()) {
        send(error_envelope(st, 0, true));
        return st;
      }
      next_heartbeat_ = now + o_.heartbeat;
    }
    if (now - last_heard_ > o_.coordinator_timeout)
      return error(StatusCode::kTimeout, "%s: no word from the coordinator at %s for %lld ms%s", o_.name.c_str(),
                   o_.endpoint.c_str(), (long long)o_.coordinator_timeout.count(),
                   linked_ || registered_ ? "" : " (no handshake with it completed)");
    if (draining_ && live_.empty()) {
      send(error_envelope(Status(StatusCode::kUnavailable, "drained"), 0, true));
      return {};
    }
    if (draining_ && now >= drain_deadline_) engine_.cancel_all();
  }
}

// CURVE keys on the DEALER (when given) and a monitor of its handshakes, before it connects.
Status ReplicaServer::secure_and_watch() {
  if (o_.curve.enabled()) {
    PONDER_RETURN_IF_ERROR(curve_available());
    try {
      socket_.set(zmq::sockopt::curve_serverkey, o_.curve.server_key);
      socket_.set(zmq::sockopt::curve_publickey, o_.curve.own.public_key);
      socket_.set(zmq::sockopt::curve_secretkey, o_.curve.own.secret_key);
    } catch (const zmq::error_t& e) {
      return error(StatusCode::kInvalidArgument, "%s: cannot use the CURVE keys: %s", o_.name.c_str(), e.what());
    }
  } else {
    PONDER_LOG(kWarn, "replica", "%s: the link to %s is plain ZMTP, not encrypted (no CURVE keys given)",
               o_.name.c_str(), o_.endpoint.c_str());
  }
  PONDER_ASSIGN_OR_RETURN(monitor_, LinkMonitor::watch(context_, socket_, "ponder-replica-dealer-monitor"));
  return {};
}

// A refused key or a mechanism mismatch will not change by retrying: say which and stop. A
// connection the coordinator keeps dropping mid-handshake (it cannot decrypt our HELLO: another
// server key) is given up after a few tries.
Status ReplicaServer::on_link_event(const LinkEvent& event) {
  switch (event.event) {
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
      if (!linked_)
        PONDER_LOG(kInfo, "replica", "%s: link to %s up (%s)", o_.name.c_str(), o_.endpoint.c_str(),
                   o_.curve.enabled() ? "CURVE: encrypted, the coordinator's key verified" : "plain ZMTP");
      linked_ = true;
      closed_handshakes_ = 0;
      return {};
    case ZMQ_EVENT_DISCONNECTED:
      if (!linked_ && ++closed_handshakes_ >= 5)
        return error(StatusCode::kFailedPrecondition,
                     "%s: the coordinator at %s closed %d handshakes in a row before they completed: %s",
                     o_.name.c_str(), o_.endpoint.c_str(), closed_handshakes_,
                     o_.curve.enabled()
                         ? "it does not take this replica's CURVE keys (--curve-server-key is not its server.pub, "
                           "or it runs without CURVE: replica_curve off)"
                         : "it requires CURVE, most likely, and this replica has no keys (give --curve-server-key "
                           "and --curve-key)");
      linked_ = false;
      return {};
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
      return error(StatusCode::kFailedPrecondition,
                   "%s: the coordinator at %s refused this replica's CURVE key %s (public key %s): it is not on "
                   "its allow-list (allowed/*.pub of its curve_keys_dir)",
                   o_.name.c_str(), o_.endpoint.c_str(), o_.curve.own_name.c_str(), o_.curve.own.public_key.c_str());
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
      if (event.value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
        return error(StatusCode::kFailedPrecondition, "%s: cannot link to the coordinator at %s: %s (%s)",
                     o_.name.c_str(), o_.endpoint.c_str(), event.describe().c_str(),
                     o_.curve.enabled()
                         ? "this replica has CURVE keys, and the coordinator runs without CURVE: replica_curve off"
                         : "the coordinator requires CURVE: give --curve-server-key and --curve-key");
      [[fallthrough]];
    default:
      if (event.failed())
        PONDER_LOG(kWarn, "replica", "%s: handshake with %s failed: %s", o_.name.c_str(), o_.endpoint.c_str(),
                   event.describe().c_str());
      return {};
  }
}

Status ReplicaServer::handle(const wire::Envelope& e) {
  switch (e.body_case()) {
    case wire::Envelope::kRegistered:
      registered_ = true;
      PONDER_LOG(kInfo, "replica", "%s: registered as %s", o_.name.c_str(), e.registered().replica_id().c_str());
      return {};
    case wire::Envelope::kHeartbeat:  // the coordinator's acknowledgement
      return {};
    case wire::Envelope::kSubmit:
      submit(e.submit());
      return {};
    case wire::Envelope::kCancel: {
      auto it = engine_id_.find(e.cancel().request_id());
      if (it != engine_id_.end()) engine_.cancel(it->second);
      return {};
    }
    case wire::Envelope::kDrain:
      draining_ = true;
      drain_deadline_ = Clock::now() + std::chrono::milliseconds(e.drain().deadline_ms());
      PONDER_LOG(kInfo, "replica", "%s: draining (%zu requests in flight)", o_.name.c_str(), live_.size());
      return {};
    case wire::Envelope::kError: {
      Status st = status_from_wire(e.error());
      if (e.error().fatal()) return st.with_context("the coordinator refused this replica");
      PONDER_LOG(kWarn, "replica", "%s: %s", o_.name.c_str(), st.to_string().c_str());
      return {};
    }
    default:
      return error(StatusCode::kInvalidArgument, "%s: unexpected message %d from the coordinator",
                   o_.name.c_str(), static_cast<int>(e.body_case()));
  }
}

void ReplicaServer::submit(const wire::Submit& s) {
  if (draining_) {
    send(error_envelope(Status(StatusCode::kUnavailable, "replica is draining"), s.request_id(), false));
    return;
  }
  worker::EngineRequest r = from_wire(s);
  const int32_t n = r.n;
  auto id = engine_.enqueue(std::move(r), [this](const worker::EngineOutput& out) { pending_.push_back(out); });
  if (!id) {
    send(error_envelope(id.error(), s.request_id(), false));
    return;
  }
  live_[*id] = {.coordinator_id = s.request_id(), .samples_left = n};
  engine_id_[s.request_id()] = *id;
}

void ReplicaServer::forward(const worker::EngineOutput& out) {
  auto it = live_.find(out.request_id);
  if (it == live_.end()) return;
  wire::Envelope e;
  *e.mutable_tokens() = to_wire(out);
  e.mutable_tokens()->set_request_id(it->second.coordinator_id);
  send(std::move(e));
  if (out.finished && --it->second.samples_left == 0) {
    engine_id_.erase(it->second.coordinator_id);
    live_.erase(it);
  }
}

Status ReplicaServer::heartbeat() {
  // A rank that does not answer leaves the replica unable to step: report it and go.
  if (ping_ && engine_.idle()) PONDER_RETURN_IF_ERROR(ping_().with_context("a rank did not answer"));
  wire::Envelope e;
  *e.mutable_heartbeat() = to_wire(engine_.stats(), /*ranks_ok=*/true);
  send(std::move(e));
  return {};
}

}  // namespace

Status serve_replica(worker::Engine& engine, const ReplicaServerOptions& options,
                     std::function<Status()> ping) {
  ReplicaServer server(engine, options, std::move(ping));
  return server.run();
}

}  // namespace ponder::coordinator
