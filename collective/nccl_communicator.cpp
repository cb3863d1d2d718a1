// NCCL collectives under deadlines.
#include "collective/nccl_communicator.h"

#include <thread>

#include "common/check.h"

namespace ponder::collective {
namespace {

Status cuda_status(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return {};
  return error(StatusCode::kUnavailable, "%s: %s", what, cudaGetErrorString(err));
}

// Polls until NCCL's asynchronous state leaves ncclInProgress (non-blocking communicators).
ncclResult_t settle(ncclComm_t comm, Deadline deadline) {
  ncclResult_t state = ncclInProgress;
  while (true) {
    if (ncclCommGetAsyncError(comm, &state) != ncclSuccess) return ncclInternalError;
    if (state != ncclInProgress || Clock::now() > deadline) return state;
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

}  // namespace

Expected<std::unique_ptr<NcclCommunicator>> NcclCommunicator::create(Communicator& bootstrap,
                                                                     int device, Deadline deadline,
                                                                     cudaStream_t stream) {
  std::unique_ptr<NcclCommunicator> c(new NcclCommunicator());
  c->rank_ = bootstrap.rank();
  c->size_ = bootstrap.size();
  c->device_ = device;
  PONDER_RETURN_IF_ERROR(cuda_status(cudaSetDevice(device), "cudaSetDevice"));
  ncclUniqueId id{};
  if (c->rank_ == 0 && ncclGetUniqueId(&id) != ncclSuccess)
    return error(StatusCode::kUnavailable, "ncclGetUniqueId failed");
  PONDER_RETURN_IF_ERROR(bootstrap.broadcast(&id, sizeof(id), 0, deadline));
  if (stream != nullptr) {
    c->stream_ = stream;
  } else {
    PONDER_RETURN_IF_ERROR(cuda_status(
        cudaStreamCreateWithFlags(&c->stream_, cudaStreamNonBlocking), "cudaStreamCreate"));
    c->owns_stream_ = true;
  }
  PONDER_RETURN_IF_ERROR(cuda_status(cudaMalloc(&c->scratch_, sizeof(float)), "cudaMalloc"));
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;  // init returns at once; we poll under the deadline
  ncclResult_t r = ncclCommInitRankConfig(&c->comm_, c->size_, id, c->rank_, &config);
  if (r != ncclSuccess && r != ncclInProgress)
    return error(StatusCode::kUnavailable, "ncclCommInitRankConfig: %s", ncclGetErrorString(r));
  r = settle(c->comm_, deadline);
  if (r == ncclInProgress) {
    c->broken_ = true;
    return error(StatusCode::kTimeout,
                 "NCCL communicator of %d ranks not ready before the deadline (rank %d); aborted",
                 c->size_, c->rank_);
  }
  if (r != ncclSuccess) {
    c->broken_ = true;
    return error(StatusCode::kRemote, "NCCL init failed on rank %d: %s", c->rank_,
                 ncclGetErrorString(r));
  }
  return c;
}

NcclCommunicator::~NcclCommunicator() {
  if (comm_ != nullptr) {
    if (broken_) {
      ncclCommAbort(comm_);
    } else {
      ncclCommDestroy(comm_);
    }
  }
  if (scratch_ != nullptr) cudaFree(scratch_);
  if (stream_ != nullptr && owns_stream_) cudaStreamDestroy(stream_);
}

Status NcclCommunicator::check_usable(const char* what) const {
  if (broken_)
    return error(StatusCode::kFailedPrecondition,
                 "%s on an NCCL communicator aborted after an earlier timeout or failure", what);
  return {};
}

Status NcclCommunicator::fail(StatusCode code, const char* what, const std::string& detail) {
  broken_ = true;
  ncclCommAbort(comm_);  // unblocks kernels still waiting on peers
  comm_ = nullptr;
  return error(code, "%s (rank %d of %d): %s; communicator aborted", what, rank_, size_,
               detail.c_str());
}

Status NcclCommunicator::finish(ncclResult_t result, const char* what, Deadline deadline) {
  if (result != ncclSuccess && result != ncclInProgress)
    return fail(StatusCode::kRemote, what, ncclGetErrorString(result));
  if (result == ncclInProgress) {
    // A non-blocking communicator may still be enqueueing the operation: until it has, the
    // stream can look idle.
    const ncclResult_t state = settle(comm_, deadline);
    if (state == ncclInProgress)
      return fail(StatusCode::kTimeout, what, "not enqueued before the deadline");
    if (state != ncclSuccess) return fail(StatusCode::kRemote, what, ncclGetErrorString(state));
  }
  while (true) {
    cudaError_t q = cudaStreamQuery(stream_);
    if (q == cudaSuccess) return {};
    if (q != cudaErrorNotReady) return fail(StatusCode::kRemote, what, cudaGetErrorString(q));
    ncclResult_t state = ncclSuccess;
    ncclCommGetAsyncError(comm_, &state);
    if (state != ncclSuccess && state != ncclInProgress)
      return fail(StatusCode::kRemote, what, ncclGetErrorString(state));
    if (Clock::now() > deadline)
      return fail(StatusCode::kTimeout, what,
                  "not complete before the deadline; a peer is stuck or gone");
    std::this_thread::sleep_for(std::chrono::microseconds(10));
  }
}

Status NcclCommunicator::all_reduce_sum(float* data, size_t count, Deadline deadline) {
  PONDER_RETURN_IF_ERROR(check_usable("all_reduce"));
  stats_.all_reduce_bytes += count * sizeof(float);
  ++stats_.calls;
  return finish(ncclAllReduce(data, data, count, ncclFloat, ncclSum, comm_, stream_), "all_reduce",
                deadline);
}

Status NcclCommunicator::all_gather(const void* send, void* recv, size_t bytes, Deadline deadline) {
  PONDER_RETURN_IF_ERROR(check_usable("all_gather"));
  stats_.all_gather_bytes += bytes * size_;
  ++stats_.calls;
  return finish(ncclAllGather(send, recv, bytes, ncclInt8, comm_, stream_), "all_gather", deadline);
}

Status NcclCommunicator::reduce_scatter_sum(const float* send, float* recv, size_t count,
                                            Deadline deadline) {
  PONDER_RETURN_IF_ERROR(check_usable("reduce_scatter"));
  stats_.reduce_scatter_bytes += count * size_ * sizeof(float);
  ++stats_.calls;
  return finish(ncclReduceScatter(send, recv, count, ncclFloat, ncclSum, comm_, stream_),
                "reduce_scatter", deadline);
}

Status NcclCommunicator::broadcast(void* data, size_t bytes, int root, Deadline deadline) {
  PONDER_RETURN_IF_ERROR(check_usable("broadcast"));
  if (root < 0 || root >= size_)
    return error(StatusCode::kInvalidArgument, "broadcast root %d outside a group of %d", root,
                 size_);
  stats_.broadcast_bytes += bytes;
  ++stats_.calls;
  return finish(ncclBroadcast(data, data, bytes, ncclInt8, root, comm_, stream_), "broadcast",
                deadline);
}

Status NcclCommunicator::send(const void* data, size_t bytes, int peer, int /*tag*/,
                              Deadline deadline) {
  PONDER_RETURN_IF_ERROR(check_usable("send"));
  if (peer < 0 || peer >= size_ || peer == rank_)
    return error(StatusCode::kInvalidArgument, "send to rank %d from rank %d of %d", peer, rank_,
                 size_);
  stats_.send_bytes += bytes;
  ++stats_.calls;
  return finish(ncclSend(data, bytes, ncclInt8, peer, comm_, stream_), "send", deadline);
}

Status NcclCommunicator::recv(void* data, size_t bytes, int peer, int /*tag*/, Deadline deadline) {
  PONDER_RETURN_IF_ERROR(check_usable("recv"));
  if (peer < 0 || peer >= size_ || peer == rank_)
    return error(StatusCode::kInvalidArgument, "recv from rank %d on rank %d of %d", peer, rank_,
                 size_);
  stats_.recv_bytes += bytes;
  ++stats_.calls;
  return finish(ncclRecv(data, bytes, ncclInt8, peer, comm_, stream_), "recv", deadline);
}

// ncclSend/ncclRecv pairs in one group (NCCL has no all-to-all of its own).
Status NcclCommunicator::all_to_all(const void* send, const size_t* send_bytes, void* recv,
                                    const size_t* recv_bytes, Deadline deadline) {
  PONDER_RETURN_IF_ERROR(check_usable("all_to_all"));
  ++stats_.calls;
  ncclResult_t rc = ncclGroupStart();
  size_t sent = 0, received = 0;
  for (int q = 0; q < size_ && rc == ncclSuccess; ++q) {
    if (send_bytes[q] > 0)
      rc = ncclSend(static_cast<const char*>(send) + sent, send_bytes[q], ncclInt8, q, comm_, stream_);
    if (rc == ncclSuccess && recv_bytes[q] > 0)
      rc = ncclRecv(static_cast<char*>(recv) + received, recv_bytes[q], ncclInt8, q, comm_, stream_);
    if (q != rank_) stats_.all_to_all_bytes += send_bytes[q];
    sent += send_bytes[q];
    received += recv_bytes[q];
  }
  const ncclResult_t end = ncclGroupEnd();
  return finish(rc == ncclSuccess ? end : rc, "all_to_all", deadline);
}

Status NcclCommunicator::barrier(Deadline deadline) {
  PONDER_RETURN_IF_ERROR(check_usable("barrier"));
  ++stats_.calls;
  return finish(ncclAllReduce(scratch_, scratch_, 1, ncclFloat, ncclSum, comm_, stream_), "barrier",
                deadline);
}

}  // namespace ponder::collective
