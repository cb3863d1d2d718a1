// Fuzzes SafetensorsFile::open (worker/safetensors.cpp): the 8-byte header length, the JSON
// header, dtypes, shapes × dtype = byte spans, bounds and overlaps. Whatever it accepts must be
// readable: every tensor's last byte lies inside the file.
//
// Input: 8 bytes (little-endian: how many zero bytes follow the rest, capped at 1 TiB, so a
// header can describe a large data section without the input holding it), then the file's first
// bytes (its 8-byte header length, the header, maybe data). The file is a memfd, sparse beyond
// the input.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "worker/safetensors.h"

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "safetensors_fuzzer: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8) return 0;
  uint64_t zeros = 0;
  for (int i = 7; i >= 0; --i) zeros = (zeros << 8) | data[i];
  zeros &= (uint64_t{1} << 40) - 1;
  const int fd = memfd_create("safetensors_fuzz", MFD_CLOEXEC);
  if (fd < 0) fail("memfd_create failed");
  size_t written = 0;
  while (written < size - 8) {
    ssize_t n = ::write(fd, data + 8 + written, size - 8 - written);
    if (n <= 0) fail("write to the memfd failed");
    written += static_cast<size_t>(n);
  }
  const uint64_t file_size = (size - 8) + zeros;
  if (ftruncate(fd, static_cast<off_t>(file_size)) != 0) fail("ftruncate failed");

  auto file = ponder::worker::SafetensorsFile::open("/proc/self/fd/" + std::to_string(fd), 3);
  if (file) {
    if ((*file)->size() != file_size) fail("size() is not the file's size");
    for (const ponder::worker::TensorInfo& t : (*file)->tensors()) {
      if (t.file != 3) fail("a tensor lost its file index");
      if (t.offset < 8 || t.offset > file_size || t.nbytes > file_size - t.offset)
        fail("an accepted tensor lies outside the file");
      for (int64_t d : t.shape)
        if (d < 0) fail("an accepted tensor has a negative dimension");
      if (t.nbytes == 0) continue;
      unsigned char last = 0;
      if (!(*file)->read(t.offset + t.nbytes - 1, 1, &last).ok())
        fail("an accepted tensor's last byte cannot be read");
      (void)t.numel();
      (void)t.shape_string();
    }
  }
  close(fd);
  return 0;
}
