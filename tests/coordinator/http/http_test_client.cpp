// Blocking Beast client for the HTTP server tests.
#include "http_test_client.h"

// GCC 12 with sanitizers flags Beast's response parser (boost::optional in
// content_length_unchecked) as maybe-uninitialized where it is inlined here; a false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http.hpp>
#include <cctype>

namespace ponder::coordinator::http::testing {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = boost::asio::ip::tcp;

nlohmann::json HttpReply::json() const {
  return nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
}

std::string HttpReply::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

namespace {
HttpReply to_reply(const bhttp::response<bhttp::string_body>& res) {
  HttpReply r;
  r.status = static_cast<int>(res.result_int());
  for (const auto& field : res) {
    std::string name(field.name_string().data(), field.name_string().size());
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    r.headers[name] = std::string(field.value().data(), field.value().size());
  }
  r.body = res.body();
  r.keep_alive = res.keep_alive();
  return r;
}
}  // namespace

TestConnection::TestConnection(uint16_t port, int timeout_s, const std::string& host)
    : socket_(ioc_), port_(port) {
  socket_.connect(tcp::endpoint(net::ip::make_address(host), port));
  timeval tv{.tv_sec = timeout_s, .tv_usec = 0};
  ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

TestConnection::~TestConnection() { close(); }

void TestConnection::close() {
  beast::error_code ec;
  if (socket_.is_open()) {
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }
}

HttpReply TestConnection::request(const std::string& method, const std::string& target,
                                  const std::string& body, const Headers& headers) {
  bhttp::request<bhttp::string_body> req(bhttp::string_to_verb(method), target, 11);
  req.set(bhttp::field::host, "127.0.0.1:" + std::to_string(port_));
  if (!body.empty()) req.set(bhttp::field::content_type, "application/json");
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  req.prepare_payload();
  beast::error_code ec;
  bhttp::write(socket_, req, ec);
  if (ec) return {};
  return read_reply();
}

HttpReply TestConnection::post_json(const std::string& target, const nlohmann::json& body,
                                    const Headers& headers) {
  return request("POST", target, body.dump(), headers);
}

void TestConnection::send_raw(const std::string& bytes) {
  beast::error_code ec;
  net::write(socket_, net::buffer(bytes), ec);
}

HttpReply TestConnection::read_reply() {
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(256u << 20);
  beast::error_code ec;
  bhttp::read(socket_, buffer_, parser, ec);
  if (ec) return {};
  return to_reply(parser.get());
}

std::string TestConnection::read_until_count(const std::string& needle, int count) {
  std::string got(static_cast<const char*>(buffer_.data().data()), buffer_.size());
  buffer_.consume(buffer_.size());
  auto occurrences = [&] {
    int n = 0;
    for (size_t pos = got.find(needle); pos != std::string::npos; pos = got.find(needle, pos + 1))
      ++n;
    return n;
  };
  char chunk[4096];
  while (occurrences() < count) {
    beast::error_code ec;
    size_t n = socket_.read_some(net::buffer(chunk), ec);
    if (ec) break;
    got.append(chunk, n);
  }
  return got;
}

HttpReply http_request(uint16_t port, const std::string& method, const std::string& target,
                       const std::string& body, const Headers& headers) {
  TestConnection c(port);
  return c.request(method, target, body, headers);
}

HttpReply post_json(uint16_t port, const std::string& target, const nlohmann::json& body,
                    const Headers& headers) {
  return http_request(port, "POST", target, body.dump(), headers);
}

HttpReply parse_final_reply(std::string_view raw) {
  while (!raw.empty()) {
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(256u << 20);
    parser.eager(true);
    beast::error_code ec;
    while (!parser.is_done()) {
      const size_t used = parser.put(net::buffer(raw.data(), raw.size()), ec);
      raw.remove_prefix(used);
      if (ec == bhttp::error::need_more && used == 0) {
        ec = {};
        parser.put_eof(ec);  // a body that ends at the close, or a truncated response
      }
      if (ec && ec != bhttp::error::need_more) return {};
    }
    if (parser.get().result_int() / 100 != 1) return to_reply(parser.get());
  }
  return {};
}

std::vector<std::string> sse_data(const std::string& body) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t end = body.find("\n\n", pos);
    if (end == std::string::npos) end = body.size();
    std::string event = body.substr(pos, end - pos);
    if (event.rfind("data: ", 0) == 0) out.push_back(event.substr(6));
    pos = end + 2;
  }
  return out;
}

}  // namespace ponder::coordinator::http::testing
