// `ponder sweep …`: test-time-compute experiments — run (a spec's grid against a server, into a
// resumable SQLite store; --dry-run prints the grid) and report (the Python report on a run).
#pragma once

namespace ponder::apps {

int run_sweep(int argc, char** argv);

}  // namespace ponder::apps
