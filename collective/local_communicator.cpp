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
