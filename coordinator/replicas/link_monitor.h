// LinkMonitor: the handshake events of one ZeroMQ socket of the replica link (zmq_socket_monitor):
// which peers failed the ZMTP/CURVE handshake and why, and when one succeeded. Not thread-safe:
// one thread polls socket() and calls next(); it may be another thread than the one that watched.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <zmq.hpp>

#include "common/status.h"

namespace ponder::coordinator {

struct LinkEvent {
  uint16_t event = 0;  // ZMQ_EVENT_HANDSHAKE_*, ZMQ_EVENT_DISCONNECTED
  uint32_t value = 0;  // ZMQ_PROTOCOL_ERROR_*, a ZAP status code or an errno, by event
  std::string endpoint;
  bool failed() const;  // a handshake failed
  // What it means for an operator: "it does not speak CURVE (plain ZMTP)", "its CURVE handshake
  // did not decrypt (another server key?)", "the coordinator refused its key (ZAP 400)", …
  std::string describe() const;
};

class LinkMonitor {
 public:
  // Watches `socket` (call from the thread that owns it, before it binds or connects) for
  // handshake successes and failures and disconnections, through a PAIR socket of `context` on
  // inproc://`name` (unique within the context).
  static Expected<std::unique_ptr<LinkMonitor>> watch(zmq::context_t& context,
                                                      zmq::socket_t& socket,
                                                      const std::string& name);
  zmq::socket_t& socket() { return pair_; }
  // The next event, if one is waiting.
  std::optional<LinkEvent> next();

 private:
  explicit LinkMonitor(zmq::socket_t pair) : pair_(std::move(pair)) {}
  zmq::socket_t pair_;
};

}  // namespace ponder::coordinator
