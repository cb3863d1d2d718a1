// Single-rank collectives.
#include "collective/local_communicator.h"

#include <cstring>

namespace ponder::collective {

Status LocalCommunicator::all_gather(const void* send, void* recv, size_t bytes, Deadline) {
  if (send != recv && bytes > 0) std::memmove(recv, send, bytes);
  return {};
}

Status LocalCommunicator::reduce_scatter_sum(const float* send, float* recv, size_t count, Deadline) {
  if (send != recv && count > 0) std::memmove(recv, send, count * sizeof(float));
  return {};
}

Status LocalCommunicator::all_to_all(const void* send, const size_t* send_bytes, void* recv,
                                     const size_t* recv_bytes, Deadline) {
  if (send_bytes[0] != recv_bytes[0])
    return error(StatusCode::kInvalidArgument, "all_to_all sends %zu bytes to itself, expects %zu",
                 send_bytes[0], recv_bytes[0]);
  if (send != recv && send_bytes[0] > 0) std::memmove(recv, send, send_bytes[0]);
  return {};
}

Status LocalCommunicator::broadcast(void*, size_t, int root, Deadline) {
  if (root != 0) return error(StatusCode::kInvalidArgument, "broadcast root %d in a group of 1", root);
  return {};
}

Status LocalCommunicator::send(const void*, size_t, int peer, int, Deadline) {
  return error(StatusCode::kInvalidArgument, "send to rank %d in a group of 1", peer);
}

Status LocalCommunicator::recv(void*, size_t, int peer, int, Deadline) {
  return error(StatusCode::kInvalidArgument, "recv from rank %d in a group of 1", peer);
}

}  // namespace ponder::collective
