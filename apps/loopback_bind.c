// LD_PRELOAD shim that ponder puts under every mpirun it starts (apps/mpirun_launch.cpp). Open MPI
// 4.1's out-of-band TCP listeners bind the wildcard address (0.0.0.0 and ::) whatever
// oob_tcp_if_include says, and no MCA parameter changes that. ponder's mpirun jobs are single-node,
// so here a TCP socket bound to the wildcard is bound to loopback (127.0.0.1, ::1) instead, on the
// port asked for. The constructor takes this library out of LD_PRELOAD, so the ranks mpirun starts
// (and anything else it execs) do not load it.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*BindFn)(int, const struct sockaddr*, socklen_t);

static BindFn real_bind;

static const char kName[] = "libponder_loopback_bind.so";

// Whether an LD_PRELOAD entry (`len` bytes at `entry`) names this library.
static int is_self(const char* entry, size_t len, const char* self) {
  if (self && strlen(self) == len && strncmp(entry, self, len) == 0) return 1;
  const char* base = entry;
  for (size_t i = 0; i < len; ++i)
    if (entry[i] == '/') base = entry + i + 1;
  size_t base_len = len - (size_t)(base - entry);
  return base_len == sizeof(kName) - 1 && strncmp(base, kName, base_len) == 0;
}

// LD_PRELOAD without this library (entries are separated by ':' or ' ', as ld.so reads them).
static void drop_from_ld_preload(void) {
  const char* preload = getenv("LD_PRELOAD");
  if (!preload) return;
  Dl_info info;
  const char* self = dladdr((void*)&drop_from_ld_preload, &info) ? info.dli_fname : NULL;
  size_t n = strlen(preload);
  char* kept = malloc(n + 1);
  if (!kept) return;
  size_t used = 0;
  for (const char* p = preload; *p;) {
    size_t len = strcspn(p, ": ");
    if (len > 0 && !is_self(p, len, self)) {
      if (used > 0) kept[used++] = ':';
      memcpy(kept + used, p, len);
      used += len;
    }
    p += len;
    if (*p) ++p;
  }
  kept[used] = '\0';
  if (used == 0) {
    unsetenv("LD_PRELOAD");
  } else {
    setenv("LD_PRELOAD", kept, 1);
  }
  free(kept);
}

__attribute__((constructor)) static void init(void) {
  real_bind = (BindFn)dlsym(RTLD_NEXT, "bind");
  drop_from_ld_preload();
}

static int is_stream_socket(int fd) {
  int type = 0;
  socklen_t len = sizeof(type);
  return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
}

int bind(int fd, const struct sockaddr* addr, socklen_t len) {
  if (!real_bind) real_bind = (BindFn)dlsym(RTLD_NEXT, "bind");  // a bind before our constructor
  if (addr && is_stream_socket(fd)) {
    if (addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
      struct sockaddr_in in;
      memcpy(&in, addr, sizeof(in));
      if (in.sin_addr.s_addr == htonl(INADDR_ANY)) {
        in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return real_bind(fd, (const struct sockaddr*)&in, sizeof(in));
      }
    } else if (addr->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
      struct sockaddr_in6 in6;
      memcpy(&in6, addr, sizeof(in6));
      if (IN6_IS_ADDR_UNSPECIFIED(&in6.sin6_addr)) {
        in6.sin6_addr = in6addr_loopback;
        return real_bind(fd, (const struct sockaddr*)&in6, sizeof(in6));
      }
    }
  }
  return real_bind(fd, addr, len);
}
