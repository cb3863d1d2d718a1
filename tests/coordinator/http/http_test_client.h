// A small blocking HTTP/1.1 client for the server tests (Boost.Beast), with a receive timeout so
// that a server that never answers fails the test instead of hanging it.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ponder::coordinator::http::testing {

struct HttpReply {
  int status = 0;                              // 0: no answer (connection closed or timed out)
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  bool keep_alive = false;

  nlohmann::json json() const;  // the body as JSON (discarded value when it is not JSON)
  std::string header(const std::string& lower_name) const;
};

using Headers = std::vector<std::pair<std::string, std::string>>;

// One connection; requests go one after the other on it (keep-alive).
class TestConnection {
 public:
  explicit TestConnection(uint16_t port, int timeout_s = 120,
                          const std::string& host = "127.0.0.1");
  ~TestConnection();

  HttpReply request(const std::string& method, const std::string& target,
                    const std::string& body = "", const Headers& headers = {});
  HttpReply post_json(const std::string& target, const nlohmann::json& body,
                      const Headers& headers = {});

  // Raw access: bytes out, an HTTP response in, bytes in.
  void send_raw(const std::string& bytes);
  HttpReply read_reply();
  // Reads until `needle` has appeared `count` times in what was read (or EOF / timeout).
  std::string read_until_count(const std::string& needle, int count);
  void close();

 private:
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::socket socket_;
  boost::beast::flat_buffer buffer_;
  uint16_t port_;
};

// One request on a new connection.
HttpReply http_request(uint16_t port, const std::string& method, const std::string& target,
                       const std::string& body = "", const Headers& headers = {});
HttpReply post_json(uint16_t port, const std::string& target, const nlohmann::json& body,
                    const Headers& headers = {});

// The final response in `raw` (what a client read until the server closed), after any 1xx
// interim responses; status 0 when `raw` holds none whole.
HttpReply parse_final_reply(std::string_view raw);

// The `data:` payloads of a Server-Sent Events body, in order.
std::vector<std::string> sse_data(const std::string& body);

}  // namespace ponder::coordinator::http::testing
