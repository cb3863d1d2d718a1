#pragma once

namespace ponder::apps {

// `ponder replica`: the ranks of one or more replicas serving a coordinator (`ponder serve`).
int run_replica(int argc, char** argv);

}  // namespace ponder::apps
