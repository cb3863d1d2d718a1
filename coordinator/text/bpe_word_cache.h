// A bounded, sharded, mutex-protected map from pre-token to its BPE ids. Thread-safe. A shard
// that fills up is cleared (text drifts; the hot words come back within a few lines).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ponder::text {

class BpeWordCache {
 public:
  explicit BpeWordCache(size_t capacity);

  // Longest pre-token worth caching (longer ones are rare and would crowd the cache).
  static constexpr size_t kMaxWordBytes = 64;

  // Appends the cached ids of `word` and returns true, or returns false.
  bool lookup(std::string_view word, std::vector<int32_t>* ids) const;
  void insert(std::string_view word, const int32_t* ids, size_t count) const;

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  struct Shard {
    mutable std::mutex mutex;
    std::unordered_map<std::string, std::vector<int32_t>, Hash, std::equal_to<>> map;
  };
  static constexpr size_t kShards = 16;

  Shard& shard(std::string_view word) const {
    return shards_[(std::hash<std::string_view>()(word) >> 7) % kShards];
  }

  size_t shard_capacity_;
  std::unique_ptr<Shard[]> shards_;
};

}  // namespace ponder::text
