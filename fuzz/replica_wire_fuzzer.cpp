// Fuzzes the replica protocol's receiving side (coordinator/replicas/wire.cpp and the messages
// of replica_protocol.proto): decode() of a frame from a peer, then what the pool or the replica
// server makes of each message — Submit and Tokens into the engine's structs, Error into a
// Status. Conversions must be stable (struct → message → struct gives the same message again)
// and whatever decodes must encode and decode to the same envelope.
//
// Input: one ZeroMQ frame's bytes.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "coordinator/replicas/wire.h"

namespace {

using namespace ponder::coordinator;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "replica_wire_fuzzer: %s\n", what);
  std::abort();
}

void submit(const wire::Submit& s) {
  const wire::Submit once = to_wire(s.request_id(), from_wire(s));
  const wire::Submit twice = to_wire(once.request_id(), from_wire(once));
  if (once.SerializeAsString() != twice.SerializeAsString()) fail("Submit does not round-trip");
}

void tokens(const wire::Tokens& t) {
  const wire::Tokens once = to_wire(from_wire(t));
  const wire::Tokens twice = to_wire(from_wire(once));
  if (once.SerializeAsString() != twice.SerializeAsString()) fail("Tokens does not round-trip");
}

void error_message(const wire::Error& e) {
  const ponder::Status status = status_from_wire(e);
  if (status.ok()) fail("an Error message became an OK status");
  (void)status.to_string();
  const wire::Envelope answer = error_envelope(status, e.request_id(), e.fatal());
  if (answer.error().code() <= 0 ||
      answer.error().code() > static_cast<int32_t>(ponder::StatusCode::kInternal))
    fail("an Error message's code is outside StatusCode");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const zmq::message_t frame(data, size);
  auto envelope = decode(frame);
  if (!envelope) {
    // Both sides answer a frame that does not decode with a fatal Error.
    (void)encode(error_envelope(envelope.error(), 0, true));
    return 0;
  }
  switch (envelope->body_case()) {
    case wire::Envelope::kSubmit:
      submit(envelope->submit());
      break;
    case wire::Envelope::kTokens:
      tokens(envelope->tokens());
      break;
    case wire::Envelope::kError:
      error_message(envelope->error());
      break;
    default:
      break;
  }
  const zmq::message_t again = encode(*envelope);
  auto back = decode(again);
  if (!back) fail("a decoded envelope does not decode after encode()");
  if (back->SerializeAsString() != envelope->SerializeAsString())
    fail("encode(decode(frame)) changed the envelope");
  return 0;
}
