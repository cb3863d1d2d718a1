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


void put_sampling(Writer& w, const SamplingParams& p) {
  w.put(p.temperature);
  w.put(p.top_k);
  w.put(p.top_p);
  w.put(p.min_p);
  w.put(p.repetition_penalty);
  w.put(p.presence_penalty);
  w.put(p.frequency_penalty);
  w.put(p.seed);
  w.put(p.top_logprobs);
  w.put<uint32_t>(static_cast<uint32_t>(p.logit_bias.size()));
  for (const auto& [t, b] : p.logit_bias) {
    w.put(t);
    w.put(b);
  }
}

bool get_sampling(Reader& r, SamplingParams* p, size_t limit) {
  uint32_t n = 0;
  if (!r.get(&p->temperature) || !r.get(&p->top_k) || !r.get(&p->top_p) || !r.get(&p->min_p) ||
      !r.get(&p->repetition_penalty) || !r.get(&p->presence_penalty) ||
      !r.get(&p->frequency_penalty) || !r.get(&p->seed) || !r.get(&p->top_logprobs) ||
      !r.get(&n) || n > limit)
    return false;
  p->logit_bias.resize(n);
  for (auto& [t, b] : p->logit_bias)
    if (!r.get(&t) || !r.get(&b)) return false;
  return true;
}

}  // namespace

std::vector<uint8_t> StepPlan::encode() const {
  Writer w;
  w.put<uint32_t>(kVersion);
  w.put<uint8_t>((shutdown ? 1 : 0) | (ping ? 2 : 0));
  w.put<uint32_t>(static_cast<uint32_t>(micro_batches.size()));
  for (const auto& mb : micro_batches) {
    w.put<uint32_t>(static_cast<uint32_t>(mb.size()));
    for (const PlannedSeq& s : mb) {
      w.put(s.seq_id);
      w.put(s.start_pos);
      w.put_ints(s.tokens);
      w.put_ints(s.block_table);
      w.put<uint8_t>((s.first ? 1 : 0) | (s.sample ? 2 : 0));
      if (s.first) {
        put_sampling(w, s.sampling);
        w.put_ints(s.history);
      }
      w.put_ints(s.suppress);
      w.put<uint32_t>(static_cast<uint32_t>(s.forks.size()));
      for (const ForkedSeq& f : s.forks) {
        w.put(f.seq_id);
        put_sampling(w, f.sampling);
      }
      w.put(s.score_from);
    }
  }
  w.put<uint32_t>(static_cast<uint32_t>(finished.size()));
  for (int64_t id : finished) w.put(id);
  w.put<uint32_t>(static_cast<uint32_t>(block_copies.size()));
  for (const BlockCopy& c : block_copies) {
    w.put(c.src);
    w.put(c.dst);
    w.put(c.slots);
  }
  return w.take();
}

Expected<StepPlan> StepPlan::decode(std::span<const uint8_t> bytes) {
  Reader r(bytes);
  auto bad = [] { return error(StatusCode::kInvalidArgument, "malformed step plan"); };
  uint32_t version = 0, n_mb = 0, n_finished = 0, n_copies = 0;
  uint8_t shutdown = 0;
  if (!r.get(&version)) return bad();
  if (version != kVersion)
    return error(StatusCode::kInvalidArgument, "step plan version %u, this rank speaks %u", version,
                 kVersion);
  StepPlan plan;
  if (!r.get(&shutdown) || !r.get(&n_mb) || n_mb > bytes.size()) return bad();
  plan.shutdown = (shutdown & 1) != 0;
  plan.ping = (shutdown & 2) != 0;
  plan.micro_batches.resize(n_mb);
  for (auto& mb : plan.micro_batches) {
    uint32_t n = 0;
    if (!r.get(&n) || n > bytes.size()) return bad();
    mb.resize(n);
    for (PlannedSeq& s : mb) {
      uint8_t flags = 0;
      uint32_t n_forks = 0;
      if (!r.get(&s.seq_id) || !r.get(&s.start_pos) || !r.get_ints(&s.tokens) ||
          !r.get_ints(&s.block_table) || !r.get(&flags))
        return bad();
      s.first = (flags & 1) != 0;
      s.sample = (flags & 2) != 0;
      if (s.first && (!get_sampling(r, &s.sampling, bytes.size()) || !r.get_ints(&s.history)))
        return bad();
      if (!r.get_ints(&s.suppress) || !r.get(&n_forks) || n_forks > bytes.size()) return bad();
      s.forks.resize(n_forks);
      for (ForkedSeq& f : s.forks)
        if (!r.get(&f.seq_id) || !get_sampling(r, &f.sampling, bytes.size())) return bad();
      if (!r.get(&s.score_from)) return bad();
    }
  }
  if (!r.get(&n_finished) || n_finished > bytes.size()) return bad();
  plan.finished.resize(n_finished);
  for (auto& id : plan.finished)
    if (!r.get(&id)) return bad();
  if (!r.get(&n_copies) || n_copies > bytes.size()) return bad();
  plan.block_copies.resize(n_copies);
  for (BlockCopy& c : plan.block_copies)
    if (!r.get(&c.src) || !r.get(&c.dst) || !r.get(&c.slots)) return bad();
  if (!r.done()) return bad();
  return plan;
}

}  // namespace ponder::worker
