// The replica protocol's messages (replica_protocol.proto) to and from the engine's structs, and
// the envelope's framing: every frame carries kProtocolVersion and a peer refuses any other.
#pragma once

#include <cstdint>
#include <string>

#include <zmq.hpp>

#include "common/status.h"
#include "coordinator/replicas/replica_protocol.pb.h"
#include "worker/engine/engine.h"

namespace ponder::coordinator {

namespace wire = ::ponder::replicas::wire;

inline constexpr uint32_t kProtocolVersion = 1;

wire::Submit to_wire(int64_t request_id, const worker::EngineRequest& r);
worker::EngineRequest from_wire(const wire::Submit& s);
wire::Tokens to_wire(const worker::EngineOutput& o);
worker::EngineOutput from_wire(const wire::Tokens& t);
wire::Heartbeat to_wire(const worker::EngineStats& s, bool ranks_ok);

// One frame holding the envelope, stamped with kProtocolVersion.
zmq::message_t encode(wire::Envelope envelope);
// kInvalidArgument for bytes that do not parse; kFailedPrecondition for another version.
Expected<wire::Envelope> decode(const zmq::message_t& frame);

// An Error envelope (request_id 0 and fatal for errors about the peer itself).
wire::Envelope error_envelope(const Status& status, int64_t request_id, bool fatal);
Status status_from_wire(const wire::Error& e);

}  // namespace ponder::coordinator
