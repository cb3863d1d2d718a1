// CURVE keys of the replica links (ZeroMQ's CurveZMQ: Curve25519 key pairs, z85-encoded): making
// them, the files they live in (a secret key file must be mode 0600), and the keys directory that
// `ponder keys generate` makes. Plain functions; no state, thread-safe.
//
// A keys directory:
//   server.key, server.pub          the coordinator's pair
//   replica-I.key, replica-I.pub    one pair per replica, I = 0, 1, … (its --replica-index)
//   allowed/*.pub                   the client keys the coordinator accepts (a copy of each
//                                   replica's .pub; remove one and restart to revoke it)
// A key file holds '#' comment lines and the 40-character z85 key on a line of its own.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace ponder::coordinator {

inline constexpr size_t kCurveKeyZ85Length = 40;  // z85 of a 32-byte key

struct CurveKeyPair {
  std::string public_key;  // z85
  std::string secret_key;  // z85
};

// A client key the coordinator accepts, and the name it goes by in logs (its file's stem).
struct AllowedKey {
  std::string name;
  std::string public_key;  // z85
};

// What the coordinator's ROUTER needs. An empty secret_key: the links are plain ZMTP (no CURVE).
struct CurveServerKeys {
  std::string secret_key;  // z85 of the coordinator's secret key
  std::vector<AllowedKey> allowed;
  bool enabled() const { return !secret_key.empty(); }
};

// What a replica's DEALER needs. An empty server_key: plain ZMTP.
struct CurveClientKeys {
  std::string server_key;  // z85 of the coordinator's public key
  CurveKeyPair own;
  std::string own_name;  // for logs: the key file it came from
  bool enabled() const { return !server_key.empty(); }
};

// kFailedPrecondition, saying so, when this libzmq was built without CURVE (libsodium).
Status curve_available();
Expected<CurveKeyPair> generate_curve_key_pair();
// The public key of a z85 secret key; kInvalidArgument when it is not one.
Expected<std::string> curve_public_key(const std::string& secret_key);
// Whether `z85` is 40 z85 characters that decode to a 32-byte key.
bool is_curve_key(const std::string& z85);

// Writes a new key file (replacing one that is there): the secret key with mode 0600, the public
// key with 0644, each after a comment line naming `what`.
Status write_curve_secret_key(const std::string& path, const CurveKeyPair& pair,
                              const std::string& what);
Status write_curve_public_key(const std::string& path, const std::string& public_key,
                              const std::string& what);
// Reads a secret key file and derives its public key. Errors name the file: it cannot be read, it
// is readable by group or others (mode & 0077), or it holds no key.
Expected<CurveKeyPair> read_curve_secret_key(const std::string& path);
Expected<std::string> read_curve_public_key(const std::string& path);
// Every *.pub file of `dir`, named by its stem. Refused (naming it) when the directory or a file in
// it is writable by group or others — whoever can write there could add a key — or when it holds
// no key at all.
Expected<std::vector<AllowedKey>> read_allowed_keys(const std::string& dir);

// Paths in a keys directory.
std::string curve_server_secret_path(const std::string& dir);                // dir/server.key
std::string curve_server_public_path(const std::string& dir);                // dir/server.pub
std::string curve_replica_secret_path(const std::string& dir, int replica);  // dir/replica-I.key
std::string curve_replica_public_path(const std::string& dir, int replica);  // dir/replica-I.pub
std::string curve_allowed_dir(const std::string& dir);                       // dir/allowed

// Makes what is missing of a keys directory for `replicas` replicas: the directory (mode 0700),
// the server pair, each replica-I pair and, for each replica pair it makes, allowed/replica-I.pub.
// Never replaces a key: a second run with more replicas adds theirs, and a public key removed from
// allowed/ stays removed. Each file made or kept is appended to `made` / `kept` (may be null).
Status generate_curve_keys_dir(const std::string& dir, int replicas,
                               std::vector<std::string>* made = nullptr,
                               std::vector<std::string>* kept = nullptr);
// The coordinator's keys of a keys directory: server.key (which server.pub, when there, must
// match) and allowed/.
Expected<CurveServerKeys> load_curve_server_keys(const std::string& dir);
// A replica's keys: the coordinator's public key file and the replica's own secret key file.
Expected<CurveClientKeys> load_curve_client_keys(const std::string& server_public_path,
                                                 const std::string& own_secret_path);

}  // namespace ponder::coordinator
