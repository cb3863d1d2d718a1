// The replica link's socket monitor (link_monitor.h).
#include "coordinator/replicas/link_monitor.h"

#include <cstring>

#include "common/strings.h"

namespace ponder::coordinator {

bool LinkEvent::failed() const {
  return event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL ||
         event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL || event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
}

std::string LinkEvent::describe() const {
  switch (event) {
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
      return "handshake succeeded";
    case ZMQ_EVENT_DISCONNECTED:
      return "disconnected";
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
      return strformat("the key was refused (ZAP status %u: not on the coordinator's allow-list)",
                       value);
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
      return strformat("the handshake failed: %s", std::strerror(static_cast<int>(value)));
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
      switch (value) {
        case ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
          return "the two ends use different security mechanisms (one has CURVE keys, the other "
                 "none: "
                 "replica_curve on one side only)";
        case ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
          return "the CURVE handshake did not decrypt (the replica has another server key than the "
                 "coordinator's, or a public key without its secret)";
        case ZMQ_PROTOCOL_ERROR_ZMTP_KEY_EXCHANGE:
          return "the CURVE key exchange failed";
        default:
          return strformat("ZMTP protocol error 0x%08x in the handshake", value);
      }
    default:
      return strformat("socket event 0x%04x (%u)", event, value);
  }
}

Expected<std::unique_ptr<LinkMonitor>> LinkMonitor::watch(zmq::context_t& context,
                                                          zmq::socket_t& socket,
                                                          const std::string& name) {
  const std::string endpoint = "inproc://" + name;
  const int events = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                     ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                     ZMQ_EVENT_DISCONNECTED;
  if (zmq_socket_monitor(socket.handle(), endpoint.c_str(), events) != 0)
    return error(StatusCode::kInternal, "cannot monitor the replica socket: %s",
                 zmq_strerror(zmq_errno()));
  try {
    zmq::socket_t pair(context, zmq::socket_type::pair);
    pair.set(zmq::sockopt::linger, 0);
    pair.connect(endpoint);
    return std::unique_ptr<LinkMonitor>(new LinkMonitor(std::move(pair)));
  } catch (const zmq::error_t& e) {
    return error(StatusCode::kInternal, "cannot connect the replica socket's monitor: %s",
                 e.what());
  }
}

std::optional<LinkEvent> LinkMonitor::next() {
  zmq::message_t head;
  if (!pair_.recv(head, zmq::recv_flags::dontwait)) return std::nullopt;
  LinkEvent e;
  if (head.size() >= 6) {
    std::memcpy(&e.event, head.data(), 2);
    std::memcpy(&e.value, static_cast<const char*>(head.data()) + 2, 4);
  }
  // The endpoint follows in a second frame of the same message, always.
  while (head.more()) {
    zmq::message_t part;
    if (!pair_.recv(part, zmq::recv_flags::none)) break;
    e.endpoint = part.to_string();
    if (!part.more()) break;
  }
  return e;
}

}  // namespace ponder::coordinator
