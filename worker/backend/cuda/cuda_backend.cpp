// CUDA implementation of the Backend ops, the per-step batch upload and the graph bookkeeping.
#include "worker/backend/cuda/cuda_backend.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstring>

#include "common/strings.h"
#include "worker/backend/cuda/batch_pack.h"
#include "worker/backend/cuda/cuda_check.h"
#include "worker/backend/cuda/cuda_memory.h"
#include "worker/backend/cuda/kernels.h"
#include "worker/backend/cuda/matmul.h"
#include "worker/backend/cuda/staging.h"
#include "worker/backend/cuda/step_graphs.h"
#include "worker/model/model_config.h"

namespace ponder::worker {

using cuda::Elem;
using Mode = cuda::StepGraphs::Mode;

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

std::string cuda_unavailable_reason() {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    return cudaGetErrorString(err);
  }
  return n == 0 ? "no CUDA device" : "";
}

namespace {

Elem elem(DType dt) {
  switch (dt) {
    case DType::kBF16:
      return Elem::kBF16;
    case DType::kF16:
      return Elem::kF16;
    default:
      return Elem::kF32;
  }
}

// Decode batch sizes recorded as graphs: a step of n sequences runs padded to the bucket.
int32_t graph_bucket(int32_t n) {
  for (int32_t b : {1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128})
    if (n <= b) return b;
  return (n + 63) / 64 * 64;
}

cuda::KvLayer kv_layer(const KvCache& cache, int layer) {
  const KvCacheConfig& c = cache.config();
  return {.k = cache.k_layer(layer),
          .v = cache.v_layer(layer),
          .n_kv_heads = static_cast<int32_t>(c.n_kv_heads),
          .block_size = static_cast<int32_t>(c.block_size),
          .head_dim = static_cast<int32_t>(c.head_dim),
          .dtype = c.dtype == DType::kBF16 ? Elem::kBF16 : Elem::kF32};
}

}  // namespace

struct CudaBackend::Impl {
  int device = 0;
  cudaDeviceProp props{};
  cudaStream_t stream = nullptr;
  cudaEvent_t step_done = nullptr;  // recorded at each end_step: the step's uploads are read
  std::unique_ptr<cuda::CudaMemory> memory;
  std::unique_ptr<cuda::Matmul> gemm;
  cuda::Staging batch_staging;  // the packed batch, uploaded at begin_step (outside any graph)
  cuda::Staging op_staging;     // host arrays of ops (ids, rows, tiles), in call order
  cuda::StepGraphs graphs;
  int graph_max_batch = 0;

  // The step in progress.
  bool in_step = false;
  bool graph_step = false;
  Mode mode = Mode::kEager;
  cuda::StepGraphs::Key key;
  cuda::PackedBatch packed;
  cuda::DeviceBatch batch;          // into batch_staging's device copy
  int32_t tiles_group = -1;         // prefill tiles uploaded for this group size, this step
  cuda::DeviceBatch batch_tiles;    // batch plus those tiles
  int64_t covered_block_size = -1;  // block tables checked against this block size
  Status error;                     // first failure since it was last reported

  // Scratch, grown on demand outside recordings; replaced buffers wait in `retired` until the
  // stream is done with them.
  Buffer half_x;        // activations rounded for bf16/f16 matmuls
  Buffer attn_scratch;  // split-K partials
  std::vector<Buffer> retired;
  struct RopeEntry {
    std::vector<float> inv_freq;
    float factor = 1.0f;
    Buffer device;
  };
  std::vector<RopeEntry> rope_tables;

  ~Impl() {
    if (stream != nullptr) (void)cudaStreamSynchronize(stream);
    retired.clear();
    half_x.reset();
    attn_scratch.reset();
    rope_tables.clear();
    graphs.clear();
    gemm.reset();
    if (step_done != nullptr) (void)cudaEventDestroy(step_done);
    if (stream != nullptr) (void)cudaStreamDestroy(stream);
  }

  bool recording() const { return in_step && mode == Mode::kRecord; }
  bool replaying() const { return in_step && mode == Mode::kReplay; }

  void fail(Status st) {
    if (!st.ok() && error.ok()) error = std::move(st);
  }
  void launched(cudaError_t err, const char* what) {
    if (err != cudaSuccess) fail(cuda::cuda_status(err, what));
  }
  Status take_error() { return std::exchange(error, Status()); }

  // Every op starts here. Outside a step (tests, benchmarks) it waits for earlier work so that
  // the staging slots can be reused. Returns whether the op should do anything.
  bool enter() {
    if (!in_step) {
      CUDA_CHECK(cudaSetDevice(device));
      CUDA_CHECK(cudaStreamSynchronize(stream));
      retired.clear();
      op_staging.reset();
      op_staging.release_retired();
      batch_staging.release_retired();
    }
    return error.ok();
  }

  // A host array into the next op slot: uploaded unless the step is a replay (whose recorded
  // copy node reads the slot). nullptr after a failure.
  const void* stage(cuda::Staging& where, const void* src, size_t bytes) {
    if (where.used() + bytes + 16 > where.capacity()) {
      PONDER_CHECK(!recording(), "staging grows while recording a CUDA graph");
      auto grown = where.reserve(where.used() + bytes + 16);
      if (!grown) {
        fail(grown.error());
        return nullptr;
      }
      if (*grown) cuda::CudaMemory::advance_epoch();
    }
    auto slot = where.put(src, bytes, stream, /*upload=*/!replaying());
    if (!slot) {
      fail(slot.error());
      return nullptr;
    }
    return *slot;
  }

  // A scratch buffer of at least `bytes`; nullptr after a failure.
  void* scratch(Buffer& buf, size_t bytes) {
    if (!buf.empty() && buf.size() >= bytes) return buf.data();
    PONDER_CHECK(!recording(), "scratch grows while recording a CUDA graph");
    if (!buf.empty()) retired.push_back(std::move(buf));
    auto fresh = memory->allocate(bytes + bytes / 2);
    if (!fresh) {
      fail(fresh.error());
      return nullptr;
    }
    buf = std::move(*fresh);
    return buf.data();
  }

  // The packed layout of `layout`: the step's, or (outside a step) packed and uploaded now.
  const cuda::DeviceBatch* batch_for(const BatchLayout& layout) {
    if (in_step) {
      PONDER_CHECK(layout.n_tokens() == packed.real_tokens &&
                       static_cast<int32_t>(layout.seqs.size()) == packed.real_seqs,
                   "op given a batch of %d tokens / %zu sequences inside a step of %d / %d",
                   layout.n_tokens(), layout.seqs.size(), packed.real_tokens, packed.real_seqs);
      return error.ok() ? &batch : nullptr;
    }
    batch_staging.reset();
    tiles_group = -1;
    covered_block_size = -1;
    Status st = cuda::pack_batch(layout, layout.n_tokens(),
                                 static_cast<int32_t>(layout.seqs.size()), &packed);
    if (!st.ok()) {
      fail(std::move(st));
      return nullptr;
    }
    const void* image =
        stage(batch_staging, packed.image.data(), packed.image.size() * sizeof(int32_t));
    if (image == nullptr) return nullptr;
    batch = packed.at(static_cast<const int32_t*>(image));
    return &batch;
  }

  bool check_cover(int64_t block_size) {
    if (covered_block_size == block_size) return true;
    Status st = packed.covers(block_size);
    if (!st.ok()) {
      fail(std::move(st));
      return false;
    }
    covered_block_size = block_size;
    return true;
  }

  const float* rope_table(const RopeTable& table) {
    for (const RopeEntry& e : rope_tables)
      if (e.factor == table.attention_factor && e.inv_freq == table.inv_freq)
        return e.device.as<float>();
    PONDER_CHECK(!recording(), "a new RoPE table while recording a CUDA graph");
    RopeEntry e{.inv_freq = table.inv_freq, .factor = table.attention_factor};
    auto buf = memory->allocate(table.inv_freq.size() * sizeof(float));
    if (!buf) {
      fail(buf.error());
      return nullptr;
    }
    e.device = std::move(*buf);
    memory->copy(e.device.data(), table.inv_freq.data(), table.inv_freq.size() * sizeof(float));
    rope_tables.push_back(std::move(e));
    return rope_tables.back().device.as<float>();
  }
};

CudaBackend::CudaBackend(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CudaBackend::~CudaBackend() = default;

Expected<std::unique_ptr<CudaBackend>> CudaBackend::create(const CudaBackendOptions& options) {
  const int count = cuda_device_count();
  if (count == 0)
    return error(StatusCode::kUnavailable, "no CUDA device visible (%s)",
                 cuda_unavailable_reason().c_str());
  if (options.device < 0 || options.device >= count)
    return error(StatusCode::kInvalidArgument, "CUDA device %d requested; %d visible",
                 options.device, count);
  auto impl = std::make_unique<Impl>();
  impl->device = options.device;
  impl->graph_max_batch = std::max(0, options.graph_max_batch);
  PONDER_RETURN_IF_ERROR(cuda::cuda_status(cudaSetDevice(impl->device), "cudaSetDevice"));
  PONDER_RETURN_IF_ERROR(cuda::cuda_status(cudaGetDeviceProperties(&impl->props, impl->device),
                                           "cudaGetDeviceProperties"));
  PONDER_RETURN_IF_ERROR(cuda::cuda_status(
      cudaStreamCreateWithFlags(&impl->stream, cudaStreamNonBlocking), "cudaStreamCreate"));
  PONDER_RETURN_IF_ERROR(cuda::cuda_status(
      cudaEventCreateWithFlags(&impl->step_done, cudaEventDisableTiming), "cudaEventCreate"));
  PONDER_RETURN_IF_ERROR(
      cuda::cuda_status(cudaEventRecord(impl->step_done, impl->stream), "cudaEventRecord"));
  impl->memory = std::make_unique<cuda::CudaMemory>(impl->device, impl->stream);
  PONDER_ASSIGN_OR_RETURN(impl->gemm, cuda::Matmul::create());
  PONDER_RETURN_IF_ERROR(status_of(impl->batch_staging.reserve(size_t{1} << 20)));
  PONDER_RETURN_IF_ERROR(status_of(impl->op_staging.reserve(size_t{1} << 20)));
  return std::unique_ptr<CudaBackend>(new CudaBackend(std::move(impl)));
}

MemorySpace& CudaBackend::memory() const { return *impl_->memory; }
void* CudaBackend::stream() const { return impl_->stream; }
int CudaBackend::device_index() const { return impl_->device; }
int CudaBackend::multiprocessors() const { return impl_->props.multiProcessorCount; }
const cuda::GraphStats& CudaBackend::graph_stats() const { return impl_->graphs.stats(); }

std::string CudaBackend::description() const {
  const cudaDeviceProp& p = impl_->props;
  return strformat("%s, sm_%d%d, %d SMs, %.1f GiB", p.name, p.major, p.minor, p.multiProcessorCount,
                   static_cast<double>(p.totalGlobalMem) / (1 << 30));
}

StepShape CudaBackend::begin_step(const BatchLayout& batch, const StepOptions& options) {
  Impl& s = *impl_;
  PONDER_CHECK(!s.in_step, "begin_step inside a step");
  CUDA_CHECK(cudaSetDevice(s.device));
  // The previous step's uploads have been read once its work is done.
  CUDA_CHECK(cudaEventSynchronize(s.step_done));
  s.retired.clear();
  s.batch_staging.reset();
  s.op_staging.reset();
  s.op_staging.release_retired();
  s.batch_staging.release_retired();
  s.tiles_group = -1;
  s.covered_block_size = -1;

  const int32_t n_tokens = batch.n_tokens(), n_seqs = static_cast<int32_t>(batch.seqs.size());
  bool all_decode = n_seqs > 0 && n_seqs == n_tokens;
  for (const SeqSlice& q : batch.seqs) all_decode = all_decode && q.n_tokens == 1;
  s.graph_step =
      options.replayable && s.graph_max_batch > 0 && all_decode && n_seqs <= s.graph_max_batch;
  const int32_t rows = s.graph_step ? graph_bucket(n_seqs) : n_tokens;
  const int32_t seqs = s.graph_step ? rows : n_seqs;
  s.mode = Mode::kEager;
  s.in_step = true;
  Status packed = cuda::pack_batch(batch, rows, seqs, &s.packed);
  const void* image = packed.ok() ? s.stage(s.batch_staging, s.packed.image.data(),
                                            s.packed.image.size() * sizeof(int32_t))
                                  : nullptr;
  if (!packed.ok()) s.fail(std::move(packed));
  if (image == nullptr) {
    s.graph_step = false;
    return {n_tokens};
  }
  s.batch = s.packed.at(static_cast<const int32_t*>(image));
  if (s.graph_step) {
    s.key = {options.key[0], options.key[1], rows};
    auto mode = s.graphs.begin(s.key, cuda::CudaMemory::epoch(), s.stream);
    if (!mode) {
      s.fail(mode.error());
      s.graph_step = false;
      return {n_tokens};
    }
    s.mode = *mode;
    if (s.mode == Mode::kRecord) s.memory->set_recording(true);
  }
  return {rows};
}

Status CudaBackend::end_step() {
  Impl& s = *impl_;
  PONDER_CHECK(s.in_step, "end_step without begin_step");
  Status st = s.take_error();
  if (s.graph_step) {
    s.memory->set_recording(false);
    if (s.mode == Mode::kRecord && !st.ok()) {
      cudaGraph_t broken = nullptr;
      (void)cudaStreamEndCapture(s.stream, &broken);
      if (broken != nullptr) (void)cudaGraphDestroy(broken);
      (void)cudaGetLastError();
    } else if (st.ok()) {
      st = s.graphs.end(s.mode, s.key, cuda::CudaMemory::epoch(), s.stream);
    }
  } else {
    s.graphs.count_eager();
  }
  s.in_step = false;
  s.mode = Mode::kEager;
  CUDA_CHECK(cudaEventRecord(s.step_done, s.stream));
  if (st.ok()) st = cuda::cuda_status(cudaGetLastError(), "CUDA step");
  return st;
}

Status CudaBackend::synchronize() {
  Impl& s = *impl_;
  PONDER_CHECK(!(s.in_step && s.graph_step), "synchronize inside a replayable step");
  Status st = cuda::cuda_status(cudaStreamSynchronize(s.stream), "cudaStreamSynchronize");
  Status earlier = s.take_error();
  return earlier.ok() ? st : earlier;
}

void CudaBackend::embedding(const Tensor& table, std::span<const int32_t> ids, Tensor out) {
  Impl& s = *impl_;
  if (!s.enter()) return;
  const int64_t d = table.cols(), n = static_cast<int64_t>(ids.size());
  PONDER_CHECK(out.rows() == n && out.cols() == d, "embedding out%s for %lld ids of %lld",
               out.shape_string().c_str(), (long long)n, (long long)d);
  for (int32_t id : ids) PONDER_CHECK(id < table.rows(), "token id %d out of range", id);
  const void* d_ids = s.stage(s.op_staging, ids.data(), ids.size() * sizeof(int32_t));
  if (d_ids == nullptr || s.replaying()) return;
  s.launched(cuda::embedding(table.data, elem(table.dtype), d, static_cast<const int32_t*>(d_ids),
                             n, out.as<float>(), s.stream),
             "embedding");
}

void CudaBackend::rms_norm(Tensor x, const Tensor& weight, float eps, Tensor out) {
  Impl& s = *impl_;
  if (!s.enter() || s.replaying()) return;
  PONDER_CHECK(weight.numel() == x.cols() && out.numel() == x.numel(), "rms_norm x%s w%s out%s",
               x.shape_string().c_str(), weight.shape_string().c_str(), out.shape_string().c_str());
  s.launched(cuda::rms_norm(x.as<float>(), weight.as<float>(), eps, x.rows(), x.cols(),
                            out.as<float>(), s.stream),
             "rms_norm");
}

void CudaBackend::add_rms_norm(Tensor residual, Tensor x, const Tensor& weight, float eps,
                               Tensor out) {
  Impl& s = *impl_;
  if (!s.enter() || s.replaying()) return;
  PONDER_CHECK(
      x.numel() == residual.numel() && weight.numel() == x.cols() && out.numel() == x.numel(),
      "add_rms_norm residual%s x%s w%s", residual.shape_string().c_str(), x.shape_string().c_str(),
      weight.shape_string().c_str());
  s.launched(cuda::add_rms_norm(residual.as<float>(), x.as<float>(), weight.as<float>(), eps,
                                x.rows(), x.cols(), out.as<float>(), s.stream),
             "add_rms_norm");
}

void CudaBackend::matmul(Tensor x, const Tensor& w, const Tensor& bias, Tensor y) {
  Impl& s = *impl_;
  if (!s.enter() || s.replaying()) return;
  const int64_t n = x.rows(), k = x.cols(), m = w.rows();
  PONDER_CHECK(w.cols() == k && y.cols() == m && y.rows() == n && w.device == Device::kCuda,
               "matmul shapes x%s w%s (%s) y%s", x.shape_string().c_str(), w.shape_string().c_str(),
               std::string(device_name(w.device)).c_str(), y.shape_string().c_str());
  PONDER_CHECK(bias.empty() || bias.numel() == m, "matmul bias%s for %lld outputs",
               bias.shape_string().c_str(), (long long)m);
  const Elem dt = elem(w.dtype);
  const void* xin = x.data;
  if (dt != Elem::kF32) {
    // Activations rounded to the weights' type (what a bf16 model does in PyTorch).
    void* h = s.scratch(s.half_x, static_cast<size_t>(n * k) * 2);
    if (h == nullptr) return;
    s.launched(cuda::convert_f32(x.as<float>(), n * k, dt, h, s.stream), "matmul input rounding");
    xin = h;
  }
  s.fail(s.gemm->run(xin, w.data, bias.empty() ? nullptr : bias.as<float>(), y.as<float>(), n, m, k,
                     dt, s.stream));
}

void CudaBackend::rope(Tensor x, std::span<const int32_t> positions, const RopeTable& table) {
  Impl& s = *impl_;
  if (!s.enter()) return;
  const int64_t n = x.dim(0), heads = x.dim(1), hd = x.dim(2);
  PONDER_CHECK(static_cast<int64_t>(table.inv_freq.size()) * 2 == hd,
               "rope table of %zu for head_dim %lld", table.inv_freq.size(), (long long)hd);
  const int32_t* pos = nullptr;
  if (s.in_step) {
    // The step's positions (padding rows -1); `positions` are the batch's own.
    PONDER_CHECK(
        n == s.packed.n_tokens && static_cast<int32_t>(positions.size()) == s.packed.real_tokens,
        "rope over %lld rows in a step of %d", (long long)n, s.packed.n_tokens);
    if (s.replaying()) return;
    pos = s.batch.token_pos;
  } else {
    PONDER_CHECK(static_cast<int64_t>(positions.size()) == n, "rope: %zu positions for %lld rows",
                 positions.size(), (long long)n);
    pos = static_cast<const int32_t*>(
        s.stage(s.op_staging, positions.data(), positions.size() * sizeof(int32_t)));
  }
  const float* freq = s.rope_table(table);
  if (pos == nullptr || freq == nullptr) return;
  s.launched(cuda::rope(x.as<float>(), n, heads, hd, pos, freq, table.attention_factor, s.stream),
             "rope");
}

void CudaBackend::kv_store(KvCache& cache, int layer, Tensor k, Tensor v,
                           const BatchLayout& batch) {
  Impl& s = *impl_;
  if (!s.enter()) return;
  PONDER_CHECK(cache.device() == Device::kCuda, "the CUDA backend needs a device KV cache");
  const KvCacheConfig& c = cache.config();
  PONDER_CHECK(k.dim(1) == c.n_kv_heads && k.dim(2) == c.head_dim && v.numel() == k.numel(),
               "kv_store k%s v%s into a cache of %lld heads × %lld", k.shape_string().c_str(),
               v.shape_string().c_str(), (long long)c.n_kv_heads, (long long)c.head_dim);
  const cuda::DeviceBatch* b = s.batch_for(batch);
  if (b == nullptr || !s.check_cover(c.block_size) || s.replaying()) return;
  PONDER_CHECK(k.dim(0) == b->n_tokens, "kv_store of %lld rows in a step of %d",
               (long long)k.dim(0), b->n_tokens);
  s.launched(cuda::kv_store(kv_layer(cache, layer), *b, k.as<float>(), v.as<float>(), s.stream),
             "kv_store");
}

void CudaBackend::attention(Tensor q, const KvCache& cache, int layer, const BatchLayout& batch,
                            float scale, Tensor out) {
  Impl& s = *impl_;
  if (!s.enter()) return;
  PONDER_CHECK(cache.device() == Device::kCuda, "the CUDA backend needs a device KV cache");
  const KvCacheConfig& c = cache.config();
  const int64_t n_heads = q.dim(1), hd = q.dim(2);
  PONDER_CHECK(hd == c.head_dim && n_heads % c.n_kv_heads == 0 && out.numel() == q.numel(),
               "attention q%s over a cache of %lld heads × %lld", q.shape_string().c_str(),
               (long long)c.n_kv_heads, (long long)c.head_dim);
  const int32_t group = static_cast<int32_t>(n_heads / c.n_kv_heads);
  PONDER_CHECK(hd <= cuda::kMaxHeadDim && group * hd <= cuda::kMaxDecodeGroupDims,
               "attention: head_dim %lld (at most %d) × group %d (at most %d dims)", (long long)hd,
               cuda::kMaxHeadDim, group, cuda::kMaxDecodeGroupDims);
  const cuda::DeviceBatch* b = s.batch_for(batch);
  if (b == nullptr || !s.check_cover(c.block_size)) return;
  PONDER_CHECK(q.dim(0) == b->n_tokens, "attention over %lld rows in a step of %d",
               (long long)q.dim(0), b->n_tokens);
  // Prefill tiles depend on the group size: made once per step.
  if (s.tiles_group != group) {
    const std::vector<int32_t> tiles = s.packed.prefill_tiles(group);
    s.batch_tiles = *b;
    s.batch_tiles.n_prefill_tiles = static_cast<int32_t>(tiles.size() / 2);
    s.batch_tiles.prefill_tiles = nullptr;
    if (!tiles.empty()) {
      s.batch_tiles.prefill_tiles = static_cast<const int32_t*>(
          s.stage(s.op_staging, tiles.data(), tiles.size() * sizeof(int32_t)));
      if (s.batch_tiles.prefill_tiles == nullptr) return;
    }
    s.tiles_group = group;
  }
  if (s.replaying()) return;
  // Split-K over the context for decode: enough blocks for two waves over the SMs. A recorded
  // step does not depend on the context length; an eager one stops where the contexts end.
  const int32_t n_kv = static_cast<int32_t>(c.n_kv_heads);
  const int32_t n_decode = std::max(1, b->n_decode);
  int32_t splits = (2 * s.props.multiProcessorCount + n_decode * n_kv - 1) / (n_decode * n_kv);
  splits = std::clamp(splits, 1, 64);
  if (!s.graph_step) splits = std::min(splits, std::max(1, (s.packed.max_context + 63) / 64));
  cuda::AttentionScratch scratch;
  if (b->n_decode > 0 && splits > 1) {
    const size_t floats =
        cuda::attention_scratch_floats(b->n_decode, n_kv, splits, group, static_cast<int32_t>(hd));
    float* base = static_cast<float*>(s.scratch(s.attn_scratch, floats * sizeof(float)));
    if (base == nullptr) return;
    scratch.partial_out = base;
    scratch.partial_ml = base + static_cast<size_t>(b->n_decode) * n_kv * splits * group * hd;
  }
  s.launched(cuda::attention(kv_layer(cache, layer), s.batch_tiles, q.as<float>(),
                             static_cast<int32_t>(n_heads), scale, splits, scratch, out.as<float>(),
                             s.stream),
             "attention");
}

void CudaBackend::swiglu(Tensor gate_up, Tensor out) {
  Impl& s = *impl_;
  if (!s.enter() || s.replaying()) return;
  PONDER_CHECK(gate_up.numel() == 2 * out.numel() && gate_up.rows() == out.rows(),
               "swiglu gate_up%s out%s", gate_up.shape_string().c_str(),
               out.shape_string().c_str());
  s.launched(cuda::swiglu(gate_up.as<float>(), out.rows(), out.cols(), out.as<float>(), s.stream),
             "swiglu");
}

void CudaBackend::copy_columns(Tensor src, int64_t src_col, Tensor dst, int64_t dst_col,
                               int64_t cols) {
  Impl& s = *impl_;
  if (!s.enter() || s.replaying()) return;
  const int64_t n = src.rows(), sw = src.cols(), dw = dst.cols();
  PONDER_CHECK(dst.rows() == n && src_col + cols <= sw && dst_col + cols <= dw,
               "copy_columns src%s [%lld, +%lld) dst%s", src.shape_string().c_str(),
               (long long)src_col, (long long)cols, dst.shape_string().c_str());
  if (n == 0 || cols == 0) return;
  s.launched(cudaMemcpy2DAsync(dst.as<float>() + dst_col, dw * sizeof(float),
                               src.as<float>() + src_col, sw * sizeof(float), cols * sizeof(float),
                               n, cudaMemcpyDeviceToDevice, s.stream),
             "copy_columns");
}

void CudaBackend::add(Tensor x, Tensor y) {
  Impl& s = *impl_;
  if (!s.enter() || s.replaying()) return;
  PONDER_CHECK(x.numel() == y.numel(), "add x%s y%s", x.shape_string().c_str(),
               y.shape_string().c_str());
  s.launched(cuda::add(x.as<float>(), y.as<float>(), x.numel(), s.stream), "add");
}

void CudaBackend::gather_rows(Tensor src, std::span<const int32_t> rows, Tensor dst) {
  Impl& s = *impl_;
  if (!s.enter()) return;
  const int64_t d = src.cols();
  PONDER_CHECK(dst.cols() == d && dst.rows() == static_cast<int64_t>(rows.size()),
               "gather_rows src%s dst%s of %zu rows", src.shape_string().c_str(),
               dst.shape_string().c_str(), rows.size());
  for (int32_t r : rows) PONDER_CHECK(r >= 0 && r < src.rows(), "row %d out of range", r);
  const void* d_rows = s.stage(s.op_staging, rows.data(), rows.size() * sizeof(int32_t));
  if (d_rows == nullptr || s.replaying()) return;
  s.launched(cuda::gather_rows(src.as<float>(), d, static_cast<const int32_t*>(d_rows),
                               static_cast<int64_t>(rows.size()), dst.as<float>(), s.stream),
             "gather_rows");
}

void CudaBackend::fill_random(Tensor t, float mean, float halfwidth, uint64_t seed) {
  Impl& s = *impl_;
  PONDER_CHECK(!s.in_step, "fill_random inside a step");
  if (!s.enter()) return;
  s.launched(cuda::fill_random(t.data, elem(t.dtype), t.numel(), mean, halfwidth, seed, s.stream),
             "fill_random");
}

Status CudaBackend::supports(const ModelConfig& config) const {
  if (config.weight_quant != WeightQuant::kNone)
    return error(StatusCode::kFailedPrecondition,
                 "%s weights run on the CPU backend only; drop --quantize or run it with "
                 "--backend cpu",
                 std::string(weight_quant_name(config.weight_quant)).c_str());
  if (config.is_mla() || config.is_moe())
    return error(StatusCode::kFailedPrecondition,
                 "%s: the CUDA backend has no %s kernels yet; run it with --backend cpu",
                 config.architecture.c_str(),
                 config.is_mla() ? "Multi-head Latent Attention" : "mixture-of-experts");
  return {};
}

// MLA/MoE ops: supports() refuses those models before any step, so these are never reached.
void CudaBackend::head_matmul(Tensor, int64_t, const Tensor&, int64_t, Tensor, int64_t) {
  PONDER_CHECK(false, "head_matmul on the CUDA backend (MLA models are refused by supports())");
}

void CudaBackend::scatter_add_rows(Tensor, std::span<const int32_t>, std::span<const float>,
                                   Tensor) {
  PONDER_CHECK(false, "scatter_add_rows on the CUDA backend (MoE models are refused by supports())");
}

void CudaBackend::zero(Tensor x) {
  Impl& s = *impl_;
  if (!s.enter()) return;
  s.launched(cudaMemsetAsync(x.data, 0, x.numel() * sizeof(float), s.stream), "zero");
}

}  // namespace ponder::worker
