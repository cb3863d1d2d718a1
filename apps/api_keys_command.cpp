// `ponder api-keys` (api_keys_command.h).
#include "apps/api_keys_command.h"

#include <openssl/rand.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "apps/args.h"
#include "apps/generate_options.h"
#include "common/check.h"
#include "common/private_file.h"
#include "coordinator/http/access.h"

namespace ponder::apps {
namespace {

using coordinator::http::ApiKeyEntry;
using coordinator::http::KeyTable;

constexpr const char* kUsage = R"(usage: ponder api-keys add    --file F --id ID [--requests-per-minute N] [--max-concurrent N]
       ponder api-keys list   --file F
       ponder api-keys remove --file F --id ID

The API keys of `ponder serve --api-keys-file F` (or deploy.yaml's api_keys_file): one entry per
user or application, each with an id (the audit log names it) and optional limits. The file (YAML,
mode 0600) holds salted SHA-256 hashes, never the keys: `add` prints the new key once, on stdout.
A running server reads the file again on SIGHUP (kill -HUP <pid>); requests in flight keep going.

  add      a new random key for ID (the id must be new)
             --requests-per-minute N   at most N requests in any minute (429 past it; 0: no limit)
             --max-concurrent N        at most N requests at once (429 past it; 0: no limit)
  list     the ids and their limits
  remove   the key of ID (clients using it get 401 after the server's next SIGHUP)
)";

Expected<std::vector<ApiKeyEntry>> read_entries(const std::string& path, bool may_be_missing) {
  struct stat st {};
  if (may_be_missing && stat(path.c_str(), &st) != 0 && errno == ENOENT) return std::vector<ApiKeyEntry>{};
  PONDER_ASSIGN_OR_RETURN(KeyTable table, KeyTable::load(path));
  return table.entries();
}

// 32 random bytes, URL-safe base64 without padding, after a recognisable prefix.
Expected<std::string> new_key() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1)
    return error(StatusCode::kInternal, "no random bytes for a key (OpenSSL RAND_bytes failed)");
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string key = "pdr-";
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char b : bytes) {
    acc = acc << 8 | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      key += kAlphabet[(acc >> bits) & 63];
    }
  }
  if (bits > 0) key += kAlphabet[(acc << (6 - bits)) & 63];
  return key;
}

Status add(const Args& args) {
  PONDER_ASSIGN_OR_RETURN(const std::string path, args.require("file"));
  PONDER_ASSIGN_OR_RETURN(const std::string id, args.require("id"));
  PONDER_ASSIGN_OR_RETURN(const int64_t rpm, args.get_int("requests-per-minute", 0));
  PONDER_ASSIGN_OR_RETURN(const int64_t concurrent, args.get_int("max-concurrent", 0));
  if (id.empty() || id.size() > 128)
    return error(StatusCode::kInvalidArgument, "--id must be 1 to 128 characters");
  if (rpm < 0 || concurrent < 0)
    return error(StatusCode::kInvalidArgument, "--requests-per-minute and --max-concurrent must be >= 0 (0: no limit)");
  PONDER_ASSIGN_OR_RETURN(std::vector<ApiKeyEntry> entries, read_entries(path, /*may_be_missing=*/true));
  for (const ApiKeyEntry& e : entries)
    if (e.id == id)
      return error(StatusCode::kInvalidArgument, "%s already has a key with id '%s' (remove it first, or pick another id)",
                   path.c_str(), id.c_str());
  PONDER_ASSIGN_OR_RETURN(const std::string key, new_key());
  PONDER_ASSIGN_OR_RETURN(ApiKeyEntry entry, KeyTable::make_entry(id, key));
  entry.requests_per_minute = rpm;
  entry.max_concurrent = concurrent;
  entries.push_back(std::move(entry));
  PONDER_RETURN_IF_ERROR(write_private_file(path, coordinator::http::keys_file_text(entries)));
  std::printf("%s\n", key.c_str());
  std::fprintf(stderr, "api-keys: added '%s' to %s (the key above is shown once; a running server loads it on SIGHUP)\n",
               id.c_str(), path.c_str());
  return {};
}

Status list(const Args& args) {
  PONDER_ASSIGN_OR_RETURN(const std::string path, args.require("file"));
  PONDER_ASSIGN_OR_RETURN(const std::vector<ApiKeyEntry> entries, read_entries(path, /*may_be_missing=*/false));
  std::printf("%-32s %20s %15s\n", "id", "requests_per_minute", "max_concurrent");
  for (const ApiKeyEntry& e : entries)
    std::printf("%-32s %20lld %15lld\n", e.id.c_str(), (long long)e.requests_per_minute, (long long)e.max_concurrent);
  return {};
}

Status remove(const Args& args) {
  PONDER_ASSIGN_OR_RETURN(const std::string path, args.require("file"));
  PONDER_ASSIGN_OR_RETURN(const std::string id, args.require("id"));
  PONDER_ASSIGN_OR_RETURN(std::vector<ApiKeyEntry> entries, read_entries(path, /*may_be_missing=*/false));
  const auto it = std::find_if(entries.begin(), entries.end(), [&](const ApiKeyEntry& e) { return e.id == id; });
  if (it == entries.end()) return error(StatusCode::kNotFound, "%s has no key with id '%s'", path.c_str(), id.c_str());
  entries.erase(it);
  PONDER_RETURN_IF_ERROR(write_private_file(path, coordinator::http::keys_file_text(entries)));
  std::fprintf(stderr, "api-keys: removed '%s' from %s (a running server drops it on SIGHUP)\n", id.c_str(), path.c_str());
  return {};
}

}  // namespace

int run_api_keys(int argc, char** argv) {
  if (argc < 1 || std::strcmp(argv[0], "--help") == 0 || std::strcmp(argv[0], "-h") == 0) {
    std::fputs(kUsage, argc < 1 ? stderr : stdout);
    return argc < 1 ? 2 : 0;
  }
  const std::string sub = argv[0];
  Status (*run)(const Args&) = sub == "add" ? add : sub == "list" ? list : sub == "remove" ? remove : nullptr;
  if (run == nullptr) {
    std::fprintf(stderr, "ponder api-keys: unknown subcommand '%s'\n%s", sub.c_str(), kUsage);
    return 2;
  }
  auto args = Args::parse(argc - 1, argv + 1, {}, {"file", "id", "requests-per-minute", "max-concurrent"});
  Status st = !args ? Status(args.error())
              : !args->positional().empty()
                  ? Status(error(StatusCode::kInvalidArgument, "unexpected argument '%s'", args->positional()[0].c_str()))
                  : run(*args);
  return st.ok() ? 0 : report_failure(("api-keys " + sub).c_str(), st);
}

}  // namespace ponder::apps
