// The address this node's listeners bind inside an allocation: the IPv4 address of a named
// interface (slurm.interface, e.g. ib0), or else the address the node's host name resolves to —
// the name Slurm reports for it. Never 0.0.0.0.
#pragma once

#include <string>

#include "common/private_file.h"  // write_private_file, for the job's key files
#include "common/status.h"

namespace ponder::slurm {

struct NodeAddress {
  std::string host;     // gethostname()
  std::string address;  // dotted IPv4
  std::string how;      // for the log: "interface ib0" / "the host name n1"
};

// kNotFound naming the interfaces there are when `interface` has no IPv4 address.
Expected<NodeAddress> node_address(const std::string& interface);

// 32 random bytes as hex (getrandom).
Expected<std::string> random_token();

}  // namespace ponder::slurm
