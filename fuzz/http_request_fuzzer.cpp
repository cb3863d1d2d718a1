// Fuzzes what a server connection does with the bytes a client sends, short of the socket and
// the replicas: Boost.Beast's request_parser with the session's header and body limits (read
// header, then body, as coordinator/http/session.cpp does, requests pipelined on one buffer),
// and for each request what Session::handle_request decides — Expect: 100-continue, the access
// gate's Authorization check (coordinator/http/access.cpp), route and method, the answers of
// /v1/models[/id], /health and /metrics, a completion body read into a CompletionRequest, every
// error answer — written out as the response Session::respond would send.
//
// The same bytes are also delivered in small reads (the first input byte picks the size): the
// answers must not depend on how TCP split the request (one exception: see same_answers()).
//
// Input: one byte (the read size), then the bytes of the connection.
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <string_view>

#include "coordinator/api/completion_request.h"
#include "coordinator/http/routes.h"
#include "coordinator/http/server_context.h"
#include "coordinator/model_text.h"

namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using namespace ponder::coordinator;
using namespace ponder::coordinator::http;

// A SyncReadStream over the input that returns at most `read_size` bytes per read, then EOF.
class InputStream {
 public:
  InputStream(std::string_view bytes, size_t read_size) : bytes_(bytes), read_size_(read_size) {}

  template <class MutableBufferSequence>
  size_t read_some(const MutableBufferSequence& buffers, beast::error_code& ec) {
    ec = {};
    if (bytes_.empty()) {
      ec = net::error::eof;
      return 0;
    }
    const size_t n = net::buffer_copy(
        buffers, net::buffer(bytes_.data(), std::min(bytes_.size(), read_size_)));
    bytes_.remove_prefix(n);
    return n;
  }
  template <class MutableBufferSequence>
  size_t read_some(const MutableBufferSequence& buffers) {
    beast::error_code ec;
    size_t n = read_some(buffers, ec);
    if (ec) throw beast::system_error(ec);
    return n;
  }

 private:
  std::string_view bytes_;
  size_t read_size_;
};

class NoReplicas final : public Dispatcher {
 public:
  ponder::Expected<int64_t> submit(ponder::worker::EngineRequest, OutputFn) override {
    return ponder::error(ponder::StatusCode::kUnavailable, "no replica");
  }
  void cancel(int64_t) override {}
  DispatcherStats stats() const override { return {.replicas = 1, .healthy_replicas = 1}; }
};

const ModelText& model() {
  static const ModelText* m = [] {
    auto loaded = ModelText::load(PONDER_SOURCE_DIR "/models/tiny-reasoner");
    if (!loaded) {
      std::fprintf(stderr, "http_request_fuzzer: %s\n", loaded.error().to_string().c_str());
      std::abort();
    }
    return new ModelText(std::move(*loaded));
  }();
  return *m;
}

constexpr std::string_view kApiKey = "sk-fuzz-key";

ServerOptions options() { return {.served_model_name = "tiny-reasoner"}; }

std::string_view view(beast::string_view s) { return {s.data(), s.size()}; }

// What Session::respond writes.
void write(const PlainResponse& r, unsigned version, bool keep_alive, std::string* out) {
  bhttp::response<bhttp::string_body> res(static_cast<bhttp::status>(r.status), version);
  res.set(bhttp::field::server, "ponder");
  res.set(bhttp::field::content_type, r.content_type);
  for (const auto& [name, value] : r.headers) res.set(name, value);
  res.keep_alive(keep_alive);
  res.body() = r.body;
  res.prepare_payload();
  std::ostringstream os;
  os << res;
  *out += os.str();
}

// Session::handle_request for one parsed request, minus the generation. Returns keep-alive.
bool handle(ServerContext& ctx, const bhttp::request<bhttp::string_body>& req, std::string* out) {
  const unsigned version = req.version();
  const bool keep_alive = req.keep_alive();
  const Route route = route_of(view(req.target()));
  const char* endpoint = endpoint_label(route);
  std::string key_id;
  auto respond = [&](PlainResponse r) {
    ctx.metrics.count_request(endpoint, r.status);
    write(r, version, keep_alive, out);
    if (!key_id.empty()) ctx.access.release(key_id);
    return keep_alive;
  };
  auto respond_error = [&](const api::ApiError& e) {
    return respond(error_response(e, ctx.options.retry_after_s));
  };
  if (needs_auth(route)) {
    const Admission a =
        ctx.access.admit(view(req[bhttp::field::authorization]), AccessGate::Clock::now());
    if (a.verdict == Admission::Verdict::kUnauthorized) {
      PlainResponse r = error_response(
          {.status = 401, .message = "bad key", .code = "invalid_api_key"}, ctx.options.retry_after_s);
      r.headers.emplace_back("WWW-Authenticate", "Bearer");
      return respond(std::move(r));
    }
    if (a.verdict == Admission::Verdict::kRateLimited) {
      PlainResponse r = error_response(
          {.status = 429, .message = a.message, .code = "rate_limit_exceeded"},
          ctx.options.retry_after_s);
      r.headers.emplace_back("Retry-After", std::to_string(a.retry_after_s));
      return respond(std::move(r));
    }
    key_id = a.key_id;
  }
  if (route == Route::kUnknown)
    return respond_error({.status = 404,
                          .message = "Not found: " + std::string(view(req.target())),
                          .code = "not_found"});
  if (view(req.method_string()) != route_method(route)) {
    PlainResponse r = error_response({.status = 405,
                                      .message = "Method " + std::string(view(req.method_string())) +
                                                 " is not allowed on " + endpoint,
                                      .code = "method_not_allowed"},
                                     ctx.options.retry_after_s);
    r.headers.emplace_back("Allow", route_method(route));
    return respond(std::move(r));
  }
  switch (route) {
    case Route::kModels:
      return respond(models_response(ctx));
    case Route::kModel:
      return respond(model_response(ctx, view(req.target())));
    case Route::kTokenize:
      return respond(tokenize_response(ctx, req.body()));
    case Route::kDetokenize:
      return respond(detokenize_response(ctx, req.body()));
    case Route::kHealth:
      return respond(health_response(ctx));
    case Route::kMetrics:
      return respond(metrics_response(ctx));
    case Route::kChatCompletions:
    case Route::kCompletions: {
      // GenerationCall::run up to the prompts (fuzz/completion_request_fuzzer.cpp goes on).
      auto body = api::parse_json_body(req.body());
      if (!body) return respond_error(body.error());
      auto request = api::parse_completion_request(
          route == Route::kChatCompletions ? api::Endpoint::kChatCompletions
                                           : api::Endpoint::kCompletions,
          *body, ctx.request_limits);
      if (!request) return respond_error(request.error());
      return respond(json_response(200, {{"generation", "not in this fuzzer"}}));
    }
    case Route::kUnknown:
      break;
  }
  return false;
}

// What a connection answered: every answer but the one to a request that could not be read,
// which ended the connection.
struct Outcome {
  enum class End { kClientLeft, kBadHeader, kHeaderLimit, kOther };
  std::string answers;
  std::string last;  // the answer to an unreadable request
  End end = End::kOther;
};

// One connection: Session::do_read → on_header → read_body → on_read → handle_request, again
// while the connection is kept alive.
Outcome connection(std::string_view bytes, size_t read_size) {
  NoReplicas replicas;
  ServerContext ctx(options(), model(), replicas);
  ctx.access.replace(std::make_shared<const KeyTable>(KeyTable::single(kApiKey)));
  InputStream stream(bytes, read_size);
  beast::flat_buffer buffer;
  Outcome out;
  for (int requests = 0; requests < 16; ++requests) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.body_limit(static_cast<uint64_t>(ctx.options.max_body_bytes));
    parser.header_limit(static_cast<uint32_t>(ctx.options.max_header_bytes));
    beast::error_code ec;
    bhttp::read_header(stream, buffer, parser, ec);
    if (!ec) {
      if (beast::iequals(parser.get()[bhttp::field::expect], "100-continue") && !parser.is_done())
        out.answers += "HTTP/1.1 100 Continue\r\n\r\n";
      bhttp::read(stream, buffer, parser, ec);
    }
    if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message ||
        ec == net::error::eof) {
      out.end = Outcome::End::kClientLeft;  // between or in the middle of requests
      break;
    }
    if (ec) {
      // Session::on_read: answered, then the connection closes.
      unsigned version = 11;
      const char* endpoint = "other";
      out.end = Outcome::End::kBadHeader;
      if (parser.is_header_done()) {
        version = parser.get().version();
        endpoint = endpoint_label(route_of(view(parser.get().target())));
        out.end = Outcome::End::kOther;
      }
      api::ApiError e{.message = "malformed HTTP request: " + ec.message(), .code = "bad_request"};
      if (ec == bhttp::error::body_limit) e = {.status = 413, .code = "request_too_large"};
      if (ec == bhttp::error::header_limit) {
        e = {.status = 431, .code = "request_header_fields_too_large"};
        out.end = Outcome::End::kHeaderLimit;
      }
      ctx.metrics.count_request(endpoint, e.status);
      write(error_response(e, ctx.options.retry_after_s), version, false, &out.last);
      break;
    }
    if (!handle(ctx, parser.get(), &out.answers)) break;
  }
  return out;
}

// Beast checks the header as it arrives only until a read ends inside a line (of three bytes
// or more); from then on it waits for the blank line that ends the header before looking again.
// So a bad line in a header that never ends is a 400 when it came in one read, and a client
// that left (or a header too long) when it did not — either way round.
bool same_answers(const Outcome& whole, const Outcome& pieces) {
  if (whole.answers != pieces.answers) return false;
  if (whole.end == pieces.end && whole.last == pieces.last) return true;
  auto unfinished_header = [](Outcome::End e) {
    return e == Outcome::End::kBadHeader || e == Outcome::End::kClientLeft ||
           e == Outcome::End::kHeaderLimit;
  };
  return (whole.end == Outcome::End::kBadHeader || pieces.end == Outcome::End::kBadHeader) &&
         unfinished_header(whole.end) && unfinished_header(pieces.end);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)model();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t read_size = 1 + data[0] % 64;
  std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  const Outcome whole = connection(bytes, bytes.size() + 1);
  const Outcome pieces = connection(bytes, read_size);
  if (!same_answers(whole, pieces)) {
    std::fprintf(stderr,
                 "http_request_fuzzer: read in %zu-byte pieces, the answers differ:\n%s%s\n"
                 "--- vs ---\n%s%s\n",
                 read_size, whole.answers.c_str(), whole.last.c_str(), pieces.answers.c_str(),
                 pieces.last.c_str());
    std::abort();
  }
  return 0;
}
