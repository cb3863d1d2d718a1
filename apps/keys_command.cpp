// `ponder keys generate --dir DIR --replicas N` (keys_command.h): a keys directory of
// coordinator/replicas/curve_keys.h, made or completed, never overwritten.
#include "apps/keys_command.h"

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "apps/args.h"
#include "apps/generate_options.h"
#include "common/check.h"
#include "coordinator/replicas/curve_keys.h"

namespace ponder::apps {
namespace {

constexpr const char* kUsage = R"(usage: ponder keys generate --dir DIR [--replicas N]

Makes the CURVE key pairs (ZeroMQ CurveZMQ, z85) that encrypt and authenticate the links between
a coordinator and its replicas, for `ponder serve` / deploy.yaml's `curve_keys_dir: DIR`:

  DIR/server.key, DIR/server.pub          the coordinator's pair
  DIR/replica-I.key, DIR/replica-I.pub    one pair per replica, I = 0 .. N-1 (its --replica-index)
  DIR/allowed/replica-I.pub               the replica keys the coordinator accepts

DIR is made with mode 0700 and every *.key with 0600 (a secret key file that group or others can
read is refused wherever it is used). Keys already there are kept: running it again with a larger
--replicas adds the new replicas' keys, and a key removed from allowed/ (to revoke it) stays
removed. A replica elsewhere needs server.pub and its own replica-I.key (`ponder replica
--curve-server-key DIR/server.pub --curve-key DIR/replica-I.key`).

  --dir DIR       where the keys go (made if missing)
  --replicas N    replica key pairs to have (default 1)
)";

Status generate(int argc, char** argv) {
  PONDER_ASSIGN_OR_RETURN(Args args, Args::parse(argc, argv, {"help"}, {"dir", "replicas"}));
  if (args.has("help")) {
    std::fputs(kUsage, stdout);
    return error(StatusCode::kCancelled, "help");
  }
  if (!args.positional().empty())
    return error(StatusCode::kInvalidArgument, "unexpected argument '%s'",
                 args.positional()[0].c_str());
  PONDER_ASSIGN_OR_RETURN(std::string dir, args.require("dir"));
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  PONDER_ASSIGN_OR_RETURN(int64_t replicas, args.get_int("replicas", 1));
  if (replicas < 0 || replicas > 4096)
    return error(StatusCode::kInvalidArgument, "--replicas must be in [0, 4096], got %lld",
                 (long long)replicas);
  std::vector<std::string> made, kept;
  PONDER_RETURN_IF_ERROR(
      coordinator::generate_curve_keys_dir(dir, static_cast<int>(replicas), &made, &kept));
  for (const std::string& path : made) std::printf("made %s\n", path.c_str());
  for (const std::string& path : kept) std::printf("kept %s\n", path.c_str());
  std::printf("curve_keys_dir: %s\n", dir.c_str());
  return {};
}

}  // namespace

int run_keys(int argc, char** argv) {
  if (argc < 1 || std::strcmp(argv[0], "--help") == 0 || std::strcmp(argv[0], "-h") == 0) {
    std::fputs(kUsage, argc < 1 ? stderr : stdout);
    return argc < 1 ? 2 : 0;
  }
  if (std::strcmp(argv[0], "generate") != 0) {
    std::fprintf(stderr, "ponder keys: unknown subcommand '%s'\n%s", argv[0], kUsage);
    return 2;
  }
  const Status st = generate(argc - 1, argv + 1);
  return st.ok() ? 0 : report_failure("keys generate", st);
}

}  // namespace ponder::apps
