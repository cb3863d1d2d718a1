#include "slurm/node_address.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "common/strings.h"

namespace ponder::slurm {

Expected<NodeAddress> node_address(const std::string& interface) {
  NodeAddress out;
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0)
    return error(StatusCode::kInternal, "gethostname: %s", std::strerror(errno));
  out.host = host;
  if (!interface.empty()) {
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) != 0) return error(StatusCode::kInternal, "getifaddrs: %s", std::strerror(errno));
    std::set<std::string> names;
    for (ifaddrs* i = list; i; i = i->ifa_next) {
      if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
      names.insert(i->ifa_name);
      if (interface == i->ifa_name && out.address.empty()) {
        char text[INET_ADDRSTRLEN] = {};
        inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, text, sizeof(text));
        out.address = text;
      }
    }
    freeifaddrs(list);
    if (out.address.empty()) {
      const std::string have = join(std::vector<std::string>(names.begin(), names.end()), ", ");
      return error(StatusCode::kNotFound, "interface '%s' has no IPv4 address on %s (interfaces with one: %s)",
                   interface.c_str(), host, have.c_str());
    }
    out.how = "interface " + interface;
    return out;
  }
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host, nullptr, &hints, &res);
  if (rc != 0)
    return error(StatusCode::kNotFound,
                 "the host name %s does not resolve (%s): set slurm.interface to the network interface to listen on",
                 host, gai_strerror(rc));
  for (addrinfo* a = res; a && out.address.empty(); a = a->ai_next) {
    char text[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr, text, sizeof(text));
    out.address = text;
  }
  freeaddrinfo(res);
  out.how = std::string("the host name ") + host;
  return out;
}

Expected<std::string> random_token() {
  unsigned char bytes[32];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    ssize_t n = getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return error(StatusCode::kInternal, "getrandom: %s", std::strerror(errno));
    got += static_cast<size_t>(n);
  }
  std::string hex;
  for (unsigned char b : bytes) hex += strformat("%02x", b);
  return hex;
}

}  // namespace ponder::slurm
