// Anonymous and file-backed host mappings.
#include "worker/host_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <utility>

namespace ponder::worker {

std::string_view weight_memory_name(WeightMemory memory) {
  switch (memory) {
    case WeightMemory::kAnonymousHugePages: return "anonymous-hugepages";
    case WeightMemory::kAnonymous: return "anonymous";
    case WeightMemory::kFileMapped: return "file-mmap";
  }
  return "?";
}

Expected<WeightMemory> parse_weight_memory(std::string_view text) {
  for (WeightMemory m : {WeightMemory::kAnonymousHugePages, WeightMemory::kAnonymous,
                         WeightMemory::kFileMapped}) {
    if (text == weight_memory_name(m)) return m;
  }
  return error(StatusCode::kInvalidArgument,
               "unknown weight memory '%.*s' (expected anonymous-hugepages, anonymous or file-mmap)",
               static_cast<int>(text.size()), text.data());
}

HostRegion::~HostRegion() { release(); }

HostRegion::HostRegion(HostRegion&& other) noexcept { *this = std::move(other); }

HostRegion& HostRegion::operator=(HostRegion&& other) noexcept {
  if (this != &other) {
    release();
    base_ = std::exchange(other.base_, nullptr);
    mapped_ = std::exchange(other.mapped_, 0);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

void HostRegion::release() {
  if (base_ != nullptr) munmap(base_, mapped_);
  base_ = data_ = nullptr;
  mapped_ = size_ = 0;
}

Expected<HostRegion> HostRegion::allocate(size_t bytes, bool huge_pages) {
  constexpr size_t kHuge = size_t{2} << 20;
  HostRegion region;
  if (bytes == 0) return region;
  size_t align = huge_pages ? kHuge : 4096;
  size_t mapped = bytes + (huge_pages ? kHuge : 0);
  void* p = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    return error(StatusCode::kResourceExhausted, "cannot allocate %zu bytes of host memory: %s",
                 bytes, std::strerror(errno));
  }
  region.base_ = static_cast<char*>(p);
  region.mapped_ = mapped;
  auto addr = reinterpret_cast<uintptr_t>(p);
  region.data_ = reinterpret_cast<char*>((addr + align - 1) & ~(align - 1));
  region.size_ = bytes;
  // Advisory: a kernel without THP simply keeps 4 KiB pages.
  if (huge_pages) madvise(region.data_, (bytes + kHuge - 1) & ~(kHuge - 1), MADV_HUGEPAGE);
  return region;
}

Expected<HostRegion> HostRegion::map_file(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return error(StatusCode::kNotFound, "%s: %s", path.c_str(), std::strerror(errno));
  struct stat st {};
  fstat(fd, &st);
  HostRegion region;
  if (st.st_size > 0) {
    void* p = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      close(fd);
      return error(StatusCode::kInternal, "%s: mmap failed: %s", path.c_str(), std::strerror(err));
    }
    region.base_ = region.data_ = static_cast<char*>(p);
    region.mapped_ = region.size_ = static_cast<size_t>(st.st_size);
  }
  close(fd);
  return region;
}

}  // namespace ponder::worker
