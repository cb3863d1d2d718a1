// Router: which replica takes a request. Least outstanding work, with prefix affinity: the cost of
// placing a request on a replica is the work already queued there plus the prompt tokens it would
// have to prefill, so a replica that holds the prompt's leading blocks in its prefix cache wins
// unless it is busier by more than the blocks save. Pure functions on plain numbers (tested as
// tables), plus PrefixIndex: which prompt blocks each replica was last sent.
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

namespace ponder::coordinator {

struct ReplicaLoad {
  bool healthy = false;
  int64_t outstanding_tokens = 0;  // prompt tokens not yet prefilled + tokens still to generate
  int64_t cached_prompt_tokens = 0;  // of this request's prompt, in the replica's cache (estimate)
};

// The replica with the least (outstanding work + uncached prompt tokens); ties go to the lowest
// index. nullopt when none is healthy.
std::optional<size_t> choose_replica(std::span<const ReplicaLoad> replicas, int64_t prompt_tokens);

// Chained hashes of a prompt's full blocks (the same chaining the engine's prefix cache uses:
// each block's hash covers its tokens and its parent's hash).
std::vector<uint64_t> prompt_block_hashes(std::span<const int32_t> prompt, int32_t block_size);

// Per replica, the block hashes of prompts recently sent to it, least recently used evicted
// beyond `capacity` blocks — an estimate of what its prefix cache holds.
class PrefixIndex {
 public:
  PrefixIndex() = default;
  explicit PrefixIndex(size_t capacity) : capacity_(capacity) {}
  void record(std::span<const uint64_t> hashes);
  // Leading blocks of `hashes` recorded here.
  int64_t matched_blocks(std::span<const uint64_t> hashes) const;
  void clear();

 private:
  size_t capacity_ = 1 << 16;
  std::list<uint64_t> lru_;  // most recent first
  std::unordered_map<uint64_t, std::list<uint64_t>::iterator> where_;
};

}  // namespace ponder::coordinator
