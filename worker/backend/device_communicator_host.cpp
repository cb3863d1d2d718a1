// create_device_communicator where NCCL is not built: collectives use the host communicator.
#include "worker/backend/backend_factory.h"

namespace ponder::worker {

Expected<std::unique_ptr<collective::Communicator>> create_device_communicator(
    Backend&, collective::Communicator&, collective::Deadline) {
  return std::unique_ptr<collective::Communicator>();
}

}  // namespace ponder::worker
