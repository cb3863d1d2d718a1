// StepPlan encoding: little-endian fixed-width fields, a version word first.
#include "worker/step_plan.h"

#include <cstring>

namespace ponder::worker {
namespace {

class Writer {
 public:
  template <class T>
  void put(T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    out_.insert(out_.end(), p, p + sizeof(T));
  }
  void put_ints(const std::vector<int32_t>& v) {
    put<uint32_t>(static_cast<uint32_t>(v.size()));
    for (int32_t x : v) put(x);
  }
  std::vector<uint8_t> take() { return std::move(out_); }

 private:
  std::vector<uint8_t> out_;
};

class Reader {
 public:
  explicit Reader(std::span<const uint8_t> in) : in_(in) {}
  template <class T>
  bool get(T* v) {
    if (pos_ + sizeof(T) > in_.size()) return false;
    std::memcpy(v, in_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool get_ints(std::vector<int32_t>* v) {
    uint32_t n = 0;
    if (!get(&n) || pos_ + size_t{n} * 4 > in_.size()) return false;
    v->resize(n);
    for (auto& x : *v) get(&x);
    return true;
  }
  bool done() const { return pos_ == in_.size(); }

 private:
  std::span<const uint8_t> in_;
  size_t pos_ = 0;
};

}  // namespace

std::vector<uint8_t> StepPlan::encode() const {
  Writer w;
  w.put<uint32_t>(kVersion);
  w.put<uint8_t>(shutdown ? 1 : 0);
  w.put<uint32_t>(static_cast<uint32_t>(micro_batches.size()));
  for (const auto& mb : micro_batches) {
    w.put<uint32_t>(static_cast<uint32_t>(mb.size()));
    for (const PlannedSeq& s : mb) {
      w.put(s.seq_id);
      w.put(s.start_pos);
      w.put_ints(s.tokens);
      w.put_ints(s.block_table);
      w.put<uint8_t>(s.first ? 1 : 0);
      if (s.first) {
        const SamplingParams& p = s.sampling;
        w.put(p.temperature);
        w.put(p.top_k);
        w.put(p.top_p);
        w.put(p.min_p);
        w.put(p.repetition_penalty);
        w.put(p.presence_penalty);
        w.put(p.frequency_penalty);
        w.put(p.seed);
        w.put(p.top_logprobs);
      }
    }
  }
  w.put<uint32_t>(static_cast<uint32_t>(finished.size()));
  for (int64_t id : finished) w.put(id);
  return w.take();
}

Expected<StepPlan> StepPlan::decode(std::span<const uint8_t> bytes) {
  Reader r(bytes);
  auto bad = [] { return error(StatusCode::kInvalidArgument, "malformed step plan"); };
  uint32_t version = 0, n_mb = 0, n_finished = 0;
  uint8_t shutdown = 0;
  if (!r.get(&version)) return bad();
  if (version != kVersion)
    return error(StatusCode::kInvalidArgument, "step plan version %u, this rank speaks %u", version,
                 kVersion);
  StepPlan plan;
  if (!r.get(&shutdown) || !r.get(&n_mb)) return bad();
  plan.shutdown = shutdown != 0;
  plan.micro_batches.resize(n_mb);
  for (auto& mb : plan.micro_batches) {
    uint32_t n = 0;
    if (!r.get(&n) || n > bytes.size()) return bad();
    mb.resize(n);
    for (PlannedSeq& s : mb) {
      uint8_t first = 0;
      if (!r.get(&s.seq_id) || !r.get(&s.start_pos) || !r.get_ints(&s.tokens) ||
          !r.get_ints(&s.block_table) || !r.get(&first))
        return bad();
      s.first = first != 0;
      if (s.first) {
        SamplingParams& p = s.sampling;
        if (!r.get(&p.temperature) || !r.get(&p.top_k) || !r.get(&p.top_p) || !r.get(&p.min_p) ||
            !r.get(&p.repetition_penalty) || !r.get(&p.presence_penalty) ||
            !r.get(&p.frequency_penalty) || !r.get(&p.seed) || !r.get(&p.top_logprobs))
          return bad();
      }
    }
  }
  if (!r.get(&n_finished) || n_finished > bytes.size()) return bad();
  plan.finished.resize(n_finished);
  for (auto& id : plan.finished)
    if (!r.get(&id)) return bad();
  if (!r.done()) return bad();
  return plan;
}

}  // namespace ponder::worker
