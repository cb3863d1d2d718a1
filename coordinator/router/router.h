// Router: which replica takes a request. Least outstanding work, with prefix affinity: the cost of
// placing a request on a replica is the work already queued there plus the prompt tokens it would
// have to prefill, so a replica that holds the prompt's leading blocks in its prefix cache wins
// unless it is busier by more than the blocks save. Pure functions on plain numbers (tested as
// tables), plus PrefixIndex: which prompt blocks each replica was last sent.
#pragma once

#include <cstddef>
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
  int64_t free_slots = INT64_MAX;    // sequences it can start now (max_running − live samples)
};

// Where the n samples of one prompt go: a replica and how many of them.
struct SamplePlacement {
  size_t replica = 0;
  int32_t count = 0;
  bool operator==(const SamplePlacement&) const = default;
};

// The replica with the least (outstanding work + uncached prompt tokens); ties go to the lowest
// index. nullopt when none is healthy.
std::optional<size_t> choose_replica(std::span<const ReplicaLoad> replicas, int64_t prompt_tokens);

// The n samples of one prompt stay together on choose_replica's pick (one prefill, the prompt's
// blocks shared by every sample) unless they do not fit in its free sequence slots while other
// healthy replicas have room: a sample beyond the free slots waits for a whole generation to end,
// while on a replica with a free slot it starts after one prefill, so spreading is faster. Then
// the pick takes what fits, the rest fill the cheapest other replicas with room, and whatever
// still does not fit anywhere stays on the pick (its engine queues it). Empty when none is
// healthy; counts sum to n, the pick first when it takes any.
std::vector<SamplePlacement> place_samples(std::span<const ReplicaLoad> replicas,
                                           int64_t prompt_tokens, int32_t n);

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
