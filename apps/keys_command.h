// `ponder keys generate`: the CURVE key pairs of a deployment's replica links (the coordinator's,
// one per replica, and the allow-list of replica keys), as files for `curve_keys_dir`.
#pragma once

namespace ponder::apps {
// argv excludes "ponder keys": argv[0] is the subcommand.
int run_keys(int argc, char** argv);
}  // namespace ponder::apps
