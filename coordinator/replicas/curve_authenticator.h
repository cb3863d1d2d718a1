// CurveAuthenticator: the coordinator's half of CURVE on the replica ROUTER. It makes the ROUTER a
// CURVE server and answers ZeroMQ's ZAP requests (RFC 27, on inproc://zeromq.zap.01 of the
// ROUTER's context): a client whose public key is on the allow-list completes its handshake (its
// key's name becomes the connection's User-Id), any other is refused before a single message of
// it reaches the ROUTER. Refusals — unlisted keys, and peers that fail the handshake itself (no
// CURVE, another server key, a forged key) — are logged with the peer's address where ZeroMQ
// gives one, at most once per address per 10 s (the rest are counted in the next line).
//
// Its own thread owns the ZAP socket and the ROUTER's monitor, so a flood of handshakes never
// runs on the pool's thread. refused() may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <zmq.hpp>

#include "common/status.h"
#include "coordinator/replicas/curve_keys.h"

namespace ponder::coordinator {

inline constexpr const char* kReplicaZapDomain = "ponder-replicas";

class CurveAuthenticator {
 public:
  // Before `router` binds: starts the ZAP handler in `context` and makes `router` a CURVE server
  // with keys.secret_key in ZAP domain kReplicaZapDomain, the domain enforced (without a handler
  // no handshake completes), and a 5 s handshake deadline. kFailedPrecondition without CURVE;
  // kInvalidArgument for an empty allow-list.
  static Expected<std::unique_ptr<CurveAuthenticator>> secure(zmq::context_t& context,
                                                              zmq::socket_t& router,
                                                              const CurveServerKeys& keys);
  // Stops the thread. Close the ROUTER first: a handshake that finds no ZAP handler fails.
  ~CurveAuthenticator();
  CurveAuthenticator(const CurveAuthenticator&) = delete;
  CurveAuthenticator& operator=(const CurveAuthenticator&) = delete;

  int64_t refused() const { return refused_.load(); }
  int64_t accepted() const { return accepted_.load(); }

  struct Impl;  // curve_authenticator.cpp

 private:
  CurveAuthenticator() = default;
  void run();

  std::unique_ptr<Impl> impl_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> refused_{0};
  std::atomic<int64_t> accepted_{0};
  std::thread thread_;
};

}  // namespace ponder::coordinator
