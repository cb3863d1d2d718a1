// HostRegion: page-aligned anonymous memory (optionally on transparent huge pages) or a read-only
// file mapping; the storage behind loaded weights. Move-only; not thread-safe.
#pragma once

#include <cstddef>
#include <string>

#include "common/status.h"

namespace ponder::worker {

// Where weights live after loading; the benchmark compares them.
enum class WeightMemory {
  kAnonymousHugePages,  // anonymous mmap + madvise(MADV_HUGEPAGE): the default, fastest to stream
  kAnonymous,           // anonymous mmap, 4 KiB pages
  kFileMapped,          // weights used in place from a read-only mmap of the safetensors file
};

std::string_view weight_memory_name(WeightMemory memory);
Expected<WeightMemory> parse_weight_memory(std::string_view text);

class HostRegion {
 public:
  HostRegion() = default;
  ~HostRegion();
  HostRegion(HostRegion&& other) noexcept;
  HostRegion& operator=(HostRegion&& other) noexcept;
  HostRegion(const HostRegion&) = delete;
  HostRegion& operator=(const HostRegion&) = delete;

  // Anonymous, zero-filled, 2 MiB-aligned when huge pages are requested.
  static Expected<HostRegion> allocate(size_t bytes, bool huge_pages);
  // Read-only private mapping of a whole file.
  static Expected<HostRegion> map_file(const std::string& path);

  char* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  void release();
  char* base_ = nullptr;  // what munmap gets
  size_t mapped_ = 0;
  char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace ponder::worker
