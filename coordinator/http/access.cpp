// API keys (hashed, constant-time), per-key limits, the audit log.
#include "coordinator/http/access.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/beast/core/string.hpp>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <set>

#include <yaml-cpp/yaml.h>

#include "common/check.h"
#include "common/private_file.h"
#include "common/strings.h"

namespace ponder::coordinator::http {

namespace {

std::array<uint8_t, 32> salted_sha256(const std::array<uint8_t, 16>& salt, std::string_view key) {
  std::array<uint8_t, 32> out{};
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  unsigned len = 0;
  EVP_DigestInit_ex(md, EVP_sha256(), nullptr);
  EVP_DigestUpdate(md, salt.data(), salt.size());
  EVP_DigestUpdate(md, key.data(), key.size());
  EVP_DigestFinal_ex(md, out.data(), &len);
  EVP_MD_CTX_free(md);
  return out;
}

template <size_t N>
std::string to_hex(const std::array<uint8_t, N>& bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string s;
  for (uint8_t b : bytes) {
    s += kDigits[b >> 4];
    s += kDigits[b & 15];
  }
  return s;
}

template <size_t N>
bool from_hex(std::string_view text, std::array<uint8_t, N>& out) {
  if (text.size() != 2 * N) return false;
  auto digit = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < N; ++i) {
    const int hi = digit(text[2 * i]), lo = digit(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

}  // namespace

Expected<KeyTable> KeyTable::load(const std::string& path) {
  PONDER_ASSIGN_OR_RETURN(const std::string text, read_private_file(path, "api_keys_file"));
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return error(StatusCode::kInvalidArgument, "api_keys_file %s: %s", path.c_str(), e.what());
  }
  if (!root.IsMap() || !root["keys"] || !root["keys"].IsSequence())
    return error(StatusCode::kInvalidArgument,
                 "api_keys_file %s: expected a mapping with a 'keys' list (ponder api-keys add "
                 "writes one)",
                 path.c_str());
  static const std::set<std::string> kFields = {"id", "salt", "sha256", "requests_per_minute",
                                                "max_concurrent"};
  KeyTable table;
  std::set<std::string> ids;
  size_t index = 0;
  for (const YAML::Node& node : root["keys"]) {
    const std::string where = strformat("api_keys_file %s: keys[%zu]", path.c_str(), index++);
    if (!node.IsMap()) return error(StatusCode::kInvalidArgument, "%s is not a mapping", where.c_str());
    ApiKeyEntry e;
    try {
      for (const auto& kv : node) {
        const std::string field = kv.first.as<std::string>();
        if (!kFields.count(field))
          return error(StatusCode::kInvalidArgument,
                       "%s: unknown field '%s' (id, salt, sha256, requests_per_minute, "
                       "max_concurrent)",
                       where.c_str(), field.c_str());
      }
      if (!node["id"] || !node["salt"] || !node["sha256"])
        return error(StatusCode::kInvalidArgument, "%s needs 'id', 'salt' and 'sha256'", where.c_str());
      e.id = node["id"].as<std::string>();
      if (node["requests_per_minute"]) e.requests_per_minute = node["requests_per_minute"].as<int64_t>();
      if (node["max_concurrent"]) e.max_concurrent = node["max_concurrent"].as<int64_t>();
    } catch (const YAML::Exception& ex) {
      return error(StatusCode::kInvalidArgument, "%s: %s", where.c_str(), ex.what());
    }
    if (e.id.empty()) return error(StatusCode::kInvalidArgument, "%s: 'id' is empty", where.c_str());
    if (!ids.insert(e.id).second)
      return error(StatusCode::kInvalidArgument, "%s: the id '%s' is used twice", where.c_str(),
                   e.id.c_str());
    if (!from_hex(node["salt"].as<std::string>(), e.salt))
      return error(StatusCode::kInvalidArgument, "%s (%s): 'salt' must be 32 hex digits", where.c_str(),
                   e.id.c_str());
    if (!from_hex(node["sha256"].as<std::string>(), e.sha256))
      return error(StatusCode::kInvalidArgument, "%s (%s): 'sha256' must be 64 hex digits", where.c_str(),
                   e.id.c_str());
    if (e.requests_per_minute < 0 || e.max_concurrent < 0)
      return error(StatusCode::kInvalidArgument, "%s (%s): limits must be >= 0 (0: none)", where.c_str(),
                   e.id.c_str());
    table.entries_.push_back(std::move(e));
  }
  return table;
}

KeyTable KeyTable::single(std::string_view key) {
  KeyTable table;
  if (!key.empty()) table.entries_.push_back(*make_entry("api_key", key));
  return table;
}

Expected<ApiKeyEntry> KeyTable::make_entry(std::string id, std::string_view key) {
  ApiKeyEntry e;
  e.id = std::move(id);
  if (RAND_bytes(e.salt.data(), static_cast<int>(e.salt.size())) != 1)
    return error(StatusCode::kInternal, "no random bytes for a salt (OpenSSL RAND_bytes failed)");
  e.sha256 = salted_sha256(e.salt, key);
  return e;
}

const ApiKeyEntry* KeyTable::match(std::string_view key) const {
  const ApiKeyEntry* found = nullptr;
  for (const ApiKeyEntry& e : entries_) {
    const std::array<uint8_t, 32> h = salted_sha256(e.salt, key);
    const bool same = CRYPTO_memcmp(h.data(), e.sha256.data(), h.size()) == 0;
    if (same && found == nullptr) found = &e;
  }
  return found;
}

std::string keys_file_text(const std::vector<ApiKeyEntry>& entries) {
  YAML::Emitter out;
  out << YAML::Comment("ponder API keys (`ponder api-keys add|list|remove`): salted SHA-256 "
                       "hashes; the keys themselves are not stored");
  out << YAML::BeginMap << YAML::Key << "keys" << YAML::Value << YAML::BeginSeq;
  for (const ApiKeyEntry& e : entries) {
    out << YAML::BeginMap << YAML::Key << "id" << YAML::Value << e.id;
    out << YAML::Key << "salt" << YAML::Value << to_hex(e.salt);
    out << YAML::Key << "sha256" << YAML::Value << to_hex(e.sha256);
    if (e.requests_per_minute > 0)
      out << YAML::Key << "requests_per_minute" << YAML::Value << e.requests_per_minute;
    if (e.max_concurrent > 0) out << YAML::Key << "max_concurrent" << YAML::Value << e.max_concurrent;
    out << YAML::EndMap;
  }
  out << YAML::EndSeq << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

std::string_view bearer_token(std::string_view authorization) {
  // RFC 7235: credentials = auth-scheme 1*SP token68, the scheme case-insensitive.
  constexpr std::string_view kBearer = "bearer";
  if (authorization.size() <= kBearer.size() ||
      !boost::beast::iequals(boost::beast::string_view(authorization.data(), kBearer.size()),
                             boost::beast::string_view(kBearer.data(), kBearer.size())) ||
      authorization[kBearer.size()] != ' ')
    return {};
  std::string_view given = authorization.substr(kBearer.size());
  given.remove_prefix(std::min(given.find_first_not_of(' '), given.size()));
  return given;
}

AccessGate::AccessGate(std::shared_ptr<const KeyTable> table) : table_(std::move(table)) {}

void AccessGate::replace(std::shared_ptr<const KeyTable> table) {
  std::lock_guard<std::mutex> lock(mu_);
  table_ = std::move(table);
}

bool AccessGate::enabled() const {
  std::lock_guard<std::mutex> lock(mu_);
  return table_ && !table_->empty();
}

Admission AccessGate::admit(std::string_view authorization, Clock::time_point now) {
  std::shared_ptr<const KeyTable> table;
  {
    std::lock_guard<std::mutex> lock(mu_);
    table = table_;
  }
  if (!table || table->empty()) return {};
  const std::string_view key = bearer_token(authorization);
  const ApiKeyEntry* entry = key.empty() ? nullptr : table->match(key);
  if (entry == nullptr) return {.verdict = Admission::Verdict::kUnauthorized};

  std::lock_guard<std::mutex> lock(mu_);
  Usage& u = usage_[entry->id];
  while (!u.admitted.empty() && now - u.admitted.front() >= std::chrono::minutes(1))
    u.admitted.pop_front();
  if (entry->max_concurrent > 0 && u.in_flight >= entry->max_concurrent)
    return {.verdict = Admission::Verdict::kRateLimited,
            .key_id = entry->id,
            .retry_after_s = 1,
            .message = strformat("Too many concurrent requests for this API key: its limit is %lld",
                                 (long long)entry->max_concurrent)};
  if (entry->requests_per_minute > 0 &&
      static_cast<int64_t>(u.admitted.size()) >= entry->requests_per_minute) {
    const auto wait = std::chrono::ceil<std::chrono::seconds>(u.admitted.front() +
                                                              std::chrono::minutes(1) - now);
    return {.verdict = Admission::Verdict::kRateLimited,
            .key_id = entry->id,
            .retry_after_s = static_cast<int>(std::max<int64_t>(1, wait.count())),
            .message = strformat("Too many requests for this API key: its limit is %lld per minute",
                                 (long long)entry->requests_per_minute)};
  }
  u.admitted.push_back(now);
  ++u.in_flight;
  return {.key_id = entry->id};
}

void AccessGate::release(const std::string& key_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = usage_.find(key_id);
  if (it == usage_.end()) return;
  if (it->second.in_flight > 0) --it->second.in_flight;
}

Expected<std::unique_ptr<AuditLog>> AuditLog::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return error(StatusCode::kInvalidArgument, "cannot open the audit_log %s: %s", path.c_str(),
                 std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 0077)) {
    ::close(fd);
    return error(StatusCode::kInvalidArgument,
                 "audit_log %s must be a regular file that only its owner can read (chmod 600)",
                 path.c_str());
  }
  return std::unique_ptr<AuditLog>(new AuditLog(fd));
}

AuditLog::~AuditLog() {
  if (fd_ >= 0) ::close(fd_);
}

void AuditLog::write(const nlohmann::ordered_json& record) {
  const std::string line =
      record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::lock_guard<std::mutex> lock(mu_);
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // a full disk: the request was answered; the line is lost
    done += static_cast<size_t>(n);
  }
}

std::string utc_timestamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  return strformat("%s.%03lldZ", buf, (long long)ms.count());
}

}  // namespace ponder::coordinator::http
