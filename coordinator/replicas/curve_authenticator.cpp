// The ZAP handler and handshake watch of the replica ROUTER (curve_authenticator.h).
#include "coordinator/replicas/curve_authenticator.h"

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "common/log.h"
#include "common/strings.h"
#include "coordinator/replicas/link_monitor.h"

// A draft option in libzmq 4.3's headers that Debian's libzmq implements; set by number, and
// refused harmlessly by a libzmq without it.
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif

namespace ponder::coordinator {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kLogWindow = std::chrono::seconds(10);
constexpr size_t kMaxPeersRemembered = 1024;

// At most one line per peer address per kLogWindow; the lines left out are counted in the next.
class RefusalLog {
 public:
  void note(const std::string& address, const std::string& what) {
    const auto now = Clock::now();
    if (peers_.size() >= kMaxPeersRemembered) forget_before(now - kLogWindow);
    // Past the bound (many addresses at once): they share one entry.
    const std::string key =
        peers_.size() >= kMaxPeersRemembered && !peers_.count(address) ? "other peers" : address;
    Peer& p = peers_[key];
    if (p.logged && now - p.last < kLogWindow) {
      ++p.quiet;
      return;
    }
    const std::string more =
        p.quiet > 0
            ? strformat(
                  " (and %lld more from %s in the last %lld s)", (long long)p.quiet, key.c_str(),
                  (long long)std::chrono::duration_cast<std::chrono::seconds>(now - p.last).count())
            : "";
    PONDER_LOG(kWarn, "replicas", "refused a replica link from %s: %s%s", address.c_str(),
               what.c_str(), more.c_str());
    p = {.logged = true, .last = now, .quiet = 0};
  }

 private:
  struct Peer {
    bool logged = false;
    Clock::time_point last;
    int64_t quiet = 0;
  };
  void forget_before(Clock::time_point t) {
    for (auto it = peers_.begin(); it != peers_.end();)
      it = it->second.last < t ? peers_.erase(it) : std::next(it);
  }
  std::map<std::string, Peer> peers_;
};

}  // namespace

struct CurveAuthenticator::Impl {
  zmq::socket_t zap;
  std::unique_ptr<LinkMonitor> monitor;
  std::map<std::string, std::string> allowed;  // 32-byte public key → its name
  RefusalLog log;
};

Expected<std::unique_ptr<CurveAuthenticator>> CurveAuthenticator::secure(
    zmq::context_t& context, zmq::socket_t& router, const CurveServerKeys& keys) {
  PONDER_RETURN_IF_ERROR(curve_available());
  if (!is_curve_key(keys.secret_key))
    return error(StatusCode::kInvalidArgument,
                 "the coordinator's CURVE secret key is not a z85 key");
  if (keys.allowed.empty())
    return error(StatusCode::kInvalidArgument,
                 "the CURVE allow-list is empty: no replica could register");
  std::unique_ptr<CurveAuthenticator> auth(new CurveAuthenticator());
  auth->impl_ = std::make_unique<Impl>();
  Impl& impl = *auth->impl_;
  for (const AllowedKey& k : keys.allowed) {
    uint8_t bytes[32];
    if (k.public_key.size() != kCurveKeyZ85Length || !zmq_z85_decode(bytes, k.public_key.c_str()))
      return error(StatusCode::kInvalidArgument, "allowed key %s is not a z85 CURVE key",
                   k.name.c_str());
    impl.allowed[std::string(reinterpret_cast<const char*>(bytes), sizeof(bytes))] = k.name;
  }
  try {
    // The handler first: the ROUTER must never see a handshake without it.
    impl.zap = zmq::socket_t(context, zmq::socket_type::rep);
    impl.zap.set(zmq::sockopt::linger, 0);
    impl.zap.bind("inproc://zeromq.zap.01");
    router.set(zmq::sockopt::curve_server, 1);
    router.set(zmq::sockopt::curve_secretkey, keys.secret_key);
    router.set(zmq::sockopt::zap_domain, kReplicaZapDomain);
    router.set(zmq::sockopt::handshake_ivl, 5000);
  } catch (const zmq::error_t& e) {
    return error(StatusCode::kInternal, "cannot set up CURVE on the replica socket: %s", e.what());
  }
  const int enforce = 1;
  if (zmq_setsockopt(router.handle(), ZMQ_ZAP_ENFORCE_DOMAIN, &enforce, sizeof(enforce)) != 0)
    PONDER_LOG(kDebug, "replicas",
               "this libzmq has no ZMQ_ZAP_ENFORCE_DOMAIN; the ZAP handler is bound anyway");
  PONDER_ASSIGN_OR_RETURN(impl.monitor,
                          LinkMonitor::watch(context, router, "ponder-replica-router-monitor"));
  auth->thread_ = std::thread([raw = auth.get()] { raw->run(); });
  PONDER_LOG(kInfo, "replicas", "replica links: CURVE, %zu allowed replica key%s",
             keys.allowed.size(), keys.allowed.size() == 1 ? "" : "s");
  return auth;
}

CurveAuthenticator::~CurveAuthenticator() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void CurveAuthenticator::run() {
  Impl& impl = *impl_;
  while (!stop_.load()) {
    zmq::pollitem_t items[] = {{static_cast<void*>(impl.zap), 0, ZMQ_POLLIN, 0},
                               {static_cast<void*>(impl.monitor->socket()), 0, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 2, std::chrono::milliseconds(100));
    } catch (const zmq::error_t&) {
      break;  // the context is going
    }
    // ZAP requests: version, request id, domain, address, routing id, mechanism, credentials.
    for (int handled = 0; handled < 1024; ++handled) {
      std::vector<zmq::message_t> frames;
      zmq::message_t first;
      if (!impl.zap.recv(first, zmq::recv_flags::dontwait)) break;
      bool more = first.more();
      frames.push_back(std::move(first));
      while (more && frames.size() < 16) {
        zmq::message_t part;
        if (!impl.zap.recv(part, zmq::recv_flags::none)) break;
        more = part.more();
        frames.push_back(std::move(part));
      }
      std::string code = "400", text = "the client key is not on the allow-list", user;
      const std::string address = frames.size() > 3 ? frames[3].to_string() : "?";
      if (frames.size() < 7 || frames[0].to_string() != "1.0") {
        code = "500";
        text = "malformed ZAP request";
      } else if (frames[5].to_string() != "CURVE" || frames[6].size() != 32) {
        text = "not a CURVE handshake";
        impl.log.note(address,
                      "it did not authenticate with CURVE (" + frames[5].to_string() + ")");
      } else {
        auto it = impl.allowed.find(frames[6].to_string());
        if (it != impl.allowed.end()) {
          code = "200";
          text = "OK";
          user = it->second;
        } else {
          char z85[kCurveKeyZ85Length + 1] = {};
          zmq_z85_encode(z85, static_cast<const uint8_t*>(frames[6].data()), 32);
          impl.log.note(address,
                        strformat("its CURVE public key %s is not on the allow-list", z85));
        }
      }
      if (code == "200") {
        ++accepted_;
      } else {
        ++refused_;
      }
      const std::string request_id = frames.size() > 1 ? frames[1].to_string() : "";
      try {
        impl.zap.send(zmq::buffer(std::string("1.0")), zmq::send_flags::sndmore);
        impl.zap.send(zmq::buffer(request_id), zmq::send_flags::sndmore);
        impl.zap.send(zmq::buffer(code), zmq::send_flags::sndmore);
        impl.zap.send(zmq::buffer(text), zmq::send_flags::sndmore);
        impl.zap.send(zmq::buffer(user), zmq::send_flags::sndmore);
        impl.zap.send(zmq::message_t(), zmq::send_flags::none);  // no metadata
      } catch (const zmq::error_t& e) {
        PONDER_LOG(kWarn, "replicas", "cannot answer a ZAP request: %s", e.what());
      }
    }
    // Handshakes that failed before ZAP: the peer does not speak CURVE, or not with our key.
    while (auto event = impl.monitor->next()) {
      if (event->event != ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
          event->event != ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
        continue;
      ++refused_;
      impl.log.note("a peer of " + event->endpoint, event->describe());
    }
  }
}

}  // namespace ponder::coordinator
