// Who may call the API, and how much: API keys stored as salted SHA-256 hashes (a keys file for
// many users, or the one api_key), per-key limits on requests per minute and on concurrent
// requests, and the audit log of every answered request.
//
// A keys file (YAML, mode 0600; `ponder api-keys add` writes it and prints the key once):
//   keys:
//     - id: alice                 # names the key in the audit log; unique
//       salt: 9f0c…               # 16 random bytes, hex
//       sha256: 5be1…             # SHA-256(salt ‖ key), hex
//       requests_per_minute: 60   # optional, 0 = no limit
//       max_concurrent: 4         # optional, 0 = no limit
// The keys themselves are random 256-bit tokens, so one salted SHA-256 is as strong as a slow
// password hash would be, and costs a microsecond per request.
//
// Thread-safe: AccessGate and AuditLog lock; KeyTable is immutable.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace ponder::coordinator::http {

struct ApiKeyEntry {
  std::string id;
  std::array<uint8_t, 16> salt{};
  std::array<uint8_t, 32> sha256{};
  int64_t requests_per_minute = 0;  // 0: no limit
  int64_t max_concurrent = 0;       // 0: no limit
};

class KeyTable {
 public:
  // A keys file. Errors name the file and the entry: mode, YAML, a missing or unknown field, a
  // salt or hash that is not hex of the right length, a duplicate id.
  static Expected<KeyTable> load(const std::string& path);
  // The one key of `api_key` (id "api_key"), no limits.
  static KeyTable single(std::string_view key);
  // A new entry for `key` with a fresh salt.
  static Expected<ApiKeyEntry> make_entry(std::string id, std::string_view key);

  bool empty() const { return entries_.empty(); }
  const std::vector<ApiKeyEntry>& entries() const { return entries_; }
  // The entry whose key `key` is, or nullptr. Every entry is hashed and compared in constant
  // time, whether or not one already matched.
  const ApiKeyEntry* match(std::string_view key) const;

 private:
  std::vector<ApiKeyEntry> entries_;
};

// The YAML of a keys file holding `entries` (what `ponder api-keys` writes).
std::string keys_file_text(const std::vector<ApiKeyEntry>& entries);

// The key of an "Authorization: Bearer <key>" header (the scheme case-insensitive, RFC 7235), or
// empty.
std::string_view bearer_token(std::string_view authorization);

// What the gate decided about one request.
struct Admission {
  enum class Verdict { kAdmitted, kUnauthorized, kRateLimited };
  Verdict verdict = Verdict::kAdmitted;
  std::string key_id;  // the matched key's id ("" when the server has no keys)
  int retry_after_s = 0;  // kRateLimited: when to try again
  std::string message;    // kRateLimited: which limit
};

class AccessGate {
 public:
  using Clock = std::chrono::steady_clock;

  // No table, or an empty one: every request is admitted (a loopback server without keys).
  explicit AccessGate(std::shared_ptr<const KeyTable> table);

  // Replaces the keys (a reload); the limits' counts of ids that stay are kept.
  void replace(std::shared_ptr<const KeyTable> table);
  bool enabled() const;

  // Checks the key and the key's limits; an admitted request counts against them until
  // release(key_id).
  Admission admit(std::string_view authorization, Clock::time_point now);
  void release(const std::string& key_id);

 private:
  struct Usage {
    std::deque<Clock::time_point> admitted;  // in the last minute
    int64_t in_flight = 0;
  };
  mutable std::mutex mu_;
  std::shared_ptr<const KeyTable> table_;
  std::map<std::string, Usage> usage_;
};

// The audit log: one JSON object per line per answered request, appended to a 0600 file with one
// write each (lines of concurrent requests never interleave).
class AuditLog {
 public:
  static Expected<std::unique_ptr<AuditLog>> open(const std::string& path);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  void write(const nlohmann::ordered_json& record);

 private:
  explicit AuditLog(int fd) : fd_(fd) {}
  std::mutex mu_;
  int fd_ = -1;
};

// UTC now as RFC 3339 with milliseconds ("2026-12-07T01:36:23.123Z").
std::string utc_timestamp();

}  // namespace ponder::coordinator::http
