// Deadline-bounded MPI collectives.
#include "collective/mpi_communicator.h"

#include <sched.h>

#include <climits>
#include <cstring>
#include <thread>
#include <vector>

#include "common/check.h"
#include "common/log.h"

namespace ponder::collective {
namespace {

std::string mpi_error_text(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) return "MPI error " + std::to_string(code);
  return std::string(text, len);
}

// MPI counts are int: larger buffers would need derived types; our activations never get there.
Status check_count(size_t n, const char* what) {
  if (n > static_cast<size_t>(INT_MAX))
    return error(StatusCode::kInvalidArgument, "%s of %zu elements exceeds MPI's int count", what, n);
  return {};
}

}  // namespace

Expected<std::unique_ptr<MpiRuntime>> MpiRuntime::init(int* argc, char*** argv) {
  int provided = 0;
  int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
  if (rc != MPI_SUCCESS)
    return error(StatusCode::kUnavailable, "MPI_Init_thread failed: %s", mpi_error_text(rc).c_str());
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  std::unique_ptr<MpiRuntime> rt(new MpiRuntime());
  MPI_Comm_rank(MPI_COMM_WORLD, &rt->rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &rt->size_);
  set_log_rank(rt->rank_, rt->size_);
  return rt;
}

MpiRuntime::~MpiRuntime() { MPI_Finalize(); }

MpiCommunicator::MpiCommunicator(MPI_Comm comm) : comm_(comm) {
  MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
}

MpiCommunicator::~MpiCommunicator() {
  // A broken communicator may have requests in flight; freeing it could block, so leak it.
  if (comm_ != MPI_COMM_WORLD && comm_ != MPI_COMM_NULL && !broken_) MPI_Comm_free(&comm_);
}

Expected<std::unique_ptr<MpiCommunicator>> MpiCommunicator::world() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) return error(StatusCode::kFailedPrecondition, "MPI is not initialized");
  return std::unique_ptr<MpiCommunicator>(new MpiCommunicator(MPI_COMM_WORLD));
}

Expected<std::unique_ptr<MpiCommunicator>> MpiCommunicator::split(int color, int key,
                                                                  Deadline deadline) {
  PONDER_RETURN_IF_ERROR(check_usable("split"));
  // MPI_Comm_split is blocking: a barrier first, under the deadline, makes sure every rank
  // arrived, so the split itself cannot hang on a missing peer.
  PONDER_RETURN_IF_ERROR(barrier(deadline));
  MPI_Comm out = MPI_COMM_NULL;
  int rc = MPI_Comm_split(comm_, color, key, &out);
  if (rc != MPI_SUCCESS) {
    broken_ = true;
    return error(StatusCode::kRemote, "MPI_Comm_split failed: %s", mpi_error_text(rc).c_str());
  }
  return std::unique_ptr<MpiCommunicator>(new MpiCommunicator(out));
}

Status MpiCommunicator::check_usable(const char* what) const {
  if (broken_)
    return error(StatusCode::kFailedPrecondition,
                 "%s on a communicator broken by an earlier timeout or peer failure", what);
  return {};
}

Status MpiCommunicator::wait(MPI_Request* request, const char* what, Deadline deadline) {
  int spins = 0;
  while (true) {
    int done = 0;
    int rc = MPI_Test(request, &done, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) {
      broken_ = true;
      return error(StatusCode::kRemote, "%s failed (rank %d of %d): %s", what, rank_, size_,
                   mpi_error_text(rc).c_str());
    }
    if (done) return {};
    if (Clock::now() > deadline) {
      broken_ = true;
      return error(StatusCode::kTimeout,
                   "%s did not complete before its deadline (rank %d of %d); a peer is stuck "
                   "or gone",
                   what, rank_, size_);
    }
    // Spin briefly for latency, then yield the core to compute threads.
    if (++spins > 1000) {
      if (spins > 20000) {
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      } else {
        sched_yield();
      }
    }
  }
}

Status MpiCommunicator::all_reduce_sum(float* data, size_t count, Deadline deadline) {
  PONDER_RETURN_IF_ERROR(check_usable("all_reduce"));
  PONDER_RETURN_IF_ERROR(check_count(count, "all_reduce"));
  stats_.all_reduce_bytes += count * sizeof(float);
  ++stats_.calls;
  MPI_Request req;
  int rc = MPI_Iallreduce(MPI_IN_PLACE, data, static_cast<int>(count), MPI_FLOAT, MPI_SUM, comm_, &req);
  if (rc != MPI_SUCCESS) return error(StatusCode::kRemote, "MPI_Iallreduce: %s", mpi_error_text(rc).c_str());
  return wait(&req, "all_reduce", deadline);
}

Status MpiCommunicator::all_gather(const void* send, void* recv, size_t bytes, Deadline deadline) {
  PONDER_RETURN_IF_ERROR(check_usable("all_gather"));
  PONDER_RETURN_IF_ERROR(check_count(bytes, "all_gather"));
  stats_.all_gather_bytes += bytes * size_;
  ++stats_.calls;
  MPI_Request req;
  const void* src = send == static_cast<char*>(recv) + rank_ * bytes ? MPI_IN_PLACE : send;
  int rc = MPI_Iallgather(src, static_cast<int>(bytes), MPI_BYTE, recv, static_cast<int>(bytes),
                          MPI_BYTE, comm_, &req);
  if (rc != MPI_SUCCESS) return error(StatusCode::kRemote, "MPI_Iallgather: %s", mpi_error_text(rc).c_str());
  return wait(&req, "all_gather", deadline);
}

Status MpiCommunicator::reduce_scatter_sum(const float* send, float* recv, size_t count,
                                           Deadline deadline) {
  PONDER_RETURN_IF_ERROR(check_usable("reduce_scatter"));
  PONDER_RETURN_IF_ERROR(check_count(count * size_, "reduce_scatter"));
  stats_.reduce_scatter_bytes += count * size_ * sizeof(float);
  ++stats_.calls;
  MPI_Request req;
  int rc = MPI_Ireduce_scatter_block(send, recv, static_cast<int>(count), MPI_FLOAT, MPI_SUM, comm_, &req);
  if (rc != MPI_SUCCESS)
    return error(StatusCode::kRemote, "MPI_Ireduce_scatter_block: %s", mpi_error_text(rc).c_str());
  return wait(&req, "reduce_scatter", deadline);
}

Status MpiCommunicator::broadcast(void* data, size_t bytes, int root, Deadline deadline) {
  PONDER_RETURN_IF_ERROR(check_usable("broadcast"));
  PONDER_RETURN_IF_ERROR(check_count(bytes, "broadcast"));
  if (root < 0 || root >= size_)
    return error(StatusCode::kInvalidArgument, "broadcast root %d outside a group of %d", root, size_);
  stats_.broadcast_bytes += bytes;
  ++stats_.calls;
  MPI_Request req;
  int rc = MPI_Ibcast(data, static_cast<int>(bytes), MPI_BYTE, root, comm_, &req);
  if (rc != MPI_SUCCESS) return error(StatusCode::kRemote, "MPI_Ibcast: %s", mpi_error_text(rc).c_str());
  return wait(&req, "broadcast", deadline);
}

Status MpiCommunicator::send(const void* data, size_t bytes, int peer, int tag, Deadline deadline) {
  PONDER_RETURN_IF_ERROR(check_usable("send"));
  PONDER_RETURN_IF_ERROR(check_count(bytes, "send"));
  if (peer < 0 || peer >= size_ || peer == rank_)
    return error(StatusCode::kInvalidArgument, "send to rank %d from rank %d of %d", peer, rank_, size_);
  stats_.send_bytes += bytes;
  ++stats_.calls;
  MPI_Request req;
  int rc = MPI_Isend(data, static_cast<int>(bytes), MPI_BYTE, peer, tag, comm_, &req);
  if (rc != MPI_SUCCESS) return error(StatusCode::kRemote, "MPI_Isend: %s", mpi_error_text(rc).c_str());
  return wait(&req, "send", deadline);
}

Status MpiCommunicator::recv(void* data, size_t bytes, int peer, int tag, Deadline deadline) {
  PONDER_RETURN_IF_ERROR(check_usable("recv"));
  PONDER_RETURN_IF_ERROR(check_count(bytes, "recv"));
  if (peer < 0 || peer >= size_ || peer == rank_)
    return error(StatusCode::kInvalidArgument, "recv from rank %d on rank %d of %d", peer, rank_, size_);
  stats_.recv_bytes += bytes;
  ++stats_.calls;
  MPI_Request req;
  int rc = MPI_Irecv(data, static_cast<int>(bytes), MPI_BYTE, peer, tag, comm_, &req);
  if (rc != MPI_SUCCESS) return error(StatusCode::kRemote, "MPI_Irecv: %s", mpi_error_text(rc).c_str());
  return wait(&req, "recv", deadline);
}

Status MpiCommunicator::all_to_all(const void* send, const size_t* send_bytes, void* recv,
                                   const size_t* recv_bytes, Deadline deadline) {
  PONDER_RETURN_IF_ERROR(check_usable("all_to_all"));
  std::vector<int> counts[2], displs[2];
  for (int k = 0; k < 2; ++k) {
    const size_t* bytes = k == 0 ? send_bytes : recv_bytes;
    size_t offset = 0;
    for (int q = 0; q < size_; ++q) {
      PONDER_RETURN_IF_ERROR(check_count(bytes[q], "all_to_all block"));
      PONDER_RETURN_IF_ERROR(check_count(offset, "all_to_all buffer"));
      counts[k].push_back(static_cast<int>(bytes[q]));
      displs[k].push_back(static_cast<int>(offset));
      offset += bytes[q];
    }
  }
  for (int q = 0; q < size_; ++q)
    if (q != rank_) stats_.all_to_all_bytes += send_bytes[q];
  ++stats_.calls;
  MPI_Request req;
  int rc = MPI_Ialltoallv(send, counts[0].data(), displs[0].data(), MPI_BYTE, recv,
                          counts[1].data(), displs[1].data(), MPI_BYTE, comm_, &req);
  if (rc != MPI_SUCCESS)
    return error(StatusCode::kRemote, "MPI_Ialltoallv: %s", mpi_error_text(rc).c_str());
  return wait(&req, "all_to_all", deadline);
}

Status MpiCommunicator::barrier(Deadline deadline) {
  PONDER_RETURN_IF_ERROR(check_usable("barrier"));
  MPI_Request req;
  int rc = MPI_Ibarrier(comm_, &req);
  if (rc != MPI_SUCCESS) return error(StatusCode::kRemote, "MPI_Ibarrier: %s", mpi_error_text(rc).c_str());
  return wait(&req, "barrier", deadline);
}

}  // namespace ponder::collective
