// `ponder bench --offline`: serving throughput of the replica engine on one process.
#pragma once

#include "apps/args.h"

namespace ponder::apps {
Status bench_offline(const Args& args);
}  // namespace ponder::apps
