// `ponder bench`: prefill and decode speed of a model with the machine's limits measured alongside.
#pragma once

namespace ponder::apps {
// argv excludes "ponder bench".
int run_bench(int argc, char** argv);
}  // namespace ponder::apps
