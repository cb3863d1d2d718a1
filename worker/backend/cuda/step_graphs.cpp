// Warm-up, capture and replay of decode steps as CUDA graphs.
#include "worker/backend/cuda/step_graphs.h"

#include "worker/backend/cuda/cuda_check.h"

namespace ponder::worker::cuda {

StepGraphs::~StepGraphs() { clear(); }

void StepGraphs::clear() {
  for (auto& [key, e] : entries_)
    if (e.exec != nullptr) (void)cudaGraphExecDestroy(e.exec);
  entries_.clear();
}

Expected<StepGraphs::Mode> StepGraphs::begin(const Key& key, uint64_t epoch, cudaStream_t stream) {
  Entry& e = entries_[key];
  if (e.exec != nullptr && e.epoch == epoch) return Mode::kReplay;
  if (e.exec != nullptr) {  // recorded before a buffer was replaced: stale
    (void)cudaGraphExecDestroy(e.exec);
    e.exec = nullptr;
    e.warmed = false;
  }
  if (e.warmed && e.epoch == epoch) {
    PONDER_RETURN_IF_ERROR(
        cuda_status(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal),
                    "cudaStreamBeginCapture"));
    return Mode::kRecord;
  }
  e.warmed = true;
  e.epoch = epoch;
  return Mode::kEager;
}

Status StepGraphs::end(Mode mode, const Key& key, uint64_t epoch, cudaStream_t stream) {
  if (mode == Mode::kEager) {
    // The warm-up may itself have allocated (buffers sized for this shape): what the recording
    // next time must find unchanged is the memory as this step leaves it.
    entries_[key].epoch = epoch;
    ++stats_.eager_steps;
    return {};
  }
  Entry& e = entries_[key];
  if (mode == Mode::kRecord) {
    cudaGraph_t graph = nullptr;
    const cudaError_t ended = cudaStreamEndCapture(stream, &graph);
    if (ended != cudaSuccess || graph == nullptr) {
      (void)cudaGetLastError();
      e.warmed = false;
      return cuda_status(ended != cudaSuccess ? ended : cudaErrorStreamCaptureInvalidated,
                         "recording a decode step (cudaStreamEndCapture)");
    }
    cudaGraphExec_t exec = nullptr;
    const cudaError_t made = cudaGraphInstantiate(&exec, graph, 0);
    (void)cudaGraphDestroy(graph);
    if (made != cudaSuccess) {
      (void)cudaGetLastError();
      e.warmed = false;
      return cuda_status(made, "cudaGraphInstantiate");
    }
    PONDER_CHECK(epoch == e.epoch, "device memory was allocated while recording a decode step");
    e.exec = exec;
    ++stats_.recorded_steps;
  } else {
    ++stats_.replayed_steps;
  }
  return cuda_status(cudaGraphLaunch(e.exec, stream), "cudaGraphLaunch");
}

}  // namespace ponder::worker::cuda
