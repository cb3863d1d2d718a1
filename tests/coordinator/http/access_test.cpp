// API keys (hashing, the keys file and its errors), the Bearer header, per-key limits and the
// audit log's file, without a server.
#include "coordinator/http/access.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/private_file.h"

namespace ponder::coordinator::http {
namespace {

using namespace std::chrono_literals;
using Verdict = Admission::Verdict;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/ponder-access-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string write(const std::string& path, const std::string& text, mode_t mode = 0600) {
  std::ofstream(path) << text;
  chmod(path.c_str(), mode);
  return path;
}

TEST(KeyTable, MatchesOnlyItsKeysAndStoresNoKey) {
  auto alice = KeyTable::make_entry("alice", "pdr-alice-secret");
  auto bob = KeyTable::make_entry("bob", "pdr-bob-secret");
  ASSERT_TRUE(alice && bob);
  TempDir dir;
  const std::string text = keys_file_text({*alice, *bob});
  EXPECT_EQ(text.find("secret"), std::string::npos) << text;
  const std::string path = write(dir.file("keys.yaml"), text);
  auto table = KeyTable::load(path);
  ASSERT_TRUE(table.has_value()) << table.error().to_string();
  ASSERT_EQ(table->entries().size(), 2u);
  ASSERT_NE(table->match("pdr-bob-secret"), nullptr);
  EXPECT_EQ(table->match("pdr-bob-secret")->id, "bob");
  EXPECT_EQ(table->match("pdr-alice-secret")->id, "alice");
  for (const char* wrong : {"", "pdr-bob-secre", "pdr-bob-secret ", "PDR-BOB-SECRET", "pdr-alice-secret\n"})
    EXPECT_EQ(table->match(wrong), nullptr) << wrong;
  // Salts differ, so the same key hashes differently in two entries.
  auto again = KeyTable::make_entry("bob2", "pdr-bob-secret");
  EXPECT_NE(again->salt, bob->salt);
  EXPECT_NE(again->sha256, bob->sha256);
}

TEST(KeyTable, LimitsRoundTripThroughTheFile) {
  auto e = KeyTable::make_entry("carol", "k");
  e->requests_per_minute = 60;
  e->max_concurrent = 4;
  TempDir dir;
  auto table = KeyTable::load(write(dir.file("keys.yaml"), keys_file_text({*e})));
  ASSERT_TRUE(table.has_value()) << table.error().to_string();
  EXPECT_EQ(table->entries()[0].requests_per_minute, 60);
  EXPECT_EQ(table->entries()[0].max_concurrent, 4);
}

TEST(KeyTable, BadFilesAreErrorsThatNameTheProblem) {
  TempDir dir;
  const std::string salt = std::string(32, 'a'), hash = std::string(64, 'b');
  auto entry = [&](const std::string& extra) {
    return "keys:\n  - id: a\n    salt: " + salt + "\n    sha256: " + hash + "\n" + extra;
  };
  struct Case {
    std::string text;
    mode_t mode;
    std::string says;
  } cases[] = {
      {entry(""), 0644, "has mode 0644"},
      {"keys: [", 0600, "api_keys_file"},
      {"users: []\n", 0600, "'keys' list"},
      {entry("    color: red\n"), 0600, "unknown field 'color'"},
      {"keys:\n  - id: a\n    salt: " + salt + "\n", 0600, "needs 'id', 'salt' and 'sha256'"},
      {"keys:\n  - id: a\n    salt: xyz\n    sha256: " + hash + "\n", 0600, "'salt' must be 32 hex digits"},
      {"keys:\n  - id: a\n    salt: " + salt + "\n    sha256: 12\n", 0600, "'sha256' must be 64 hex digits"},
      {entry("  - id: a\n    salt: " + salt + "\n    sha256: " + hash + "\n"), 0600, "the id 'a' is used twice"},
      {entry("    requests_per_minute: -1\n"), 0600, "limits must be >= 0"},
      {entry("    max_concurrent: many\n"), 0600, "keys[0]"},
  };
  int i = 0;
  for (const Case& c : cases) {
    const std::string path = write(dir.file("k" + std::to_string(i++)), c.text, c.mode);
    auto table = KeyTable::load(path);
    ASSERT_FALSE(table.has_value()) << c.text;
    EXPECT_NE(table.error().message().find(c.says), std::string::npos) << table.error().message();
    EXPECT_NE(table.error().message().find(path), std::string::npos) << table.error().message();
  }
  EXPECT_FALSE(KeyTable::load(dir.file("missing")).has_value());
}

TEST(BearerToken, SchemeIsCaseInsensitiveAndNeedsASpace) {
  EXPECT_EQ(bearer_token("Bearer abc"), "abc");
  EXPECT_EQ(bearer_token("bearer abc"), "abc");
  EXPECT_EQ(bearer_token("BEARER   abc"), "abc");
  EXPECT_EQ(bearer_token("Bearerabc"), "");
  EXPECT_EQ(bearer_token("Basic abc"), "");
  EXPECT_EQ(bearer_token("Bearer"), "");
  EXPECT_EQ(bearer_token(""), "");
}

std::shared_ptr<const KeyTable> table_of(std::vector<std::pair<std::string, ApiKeyEntry>> keys,
                                         std::string* file_text = nullptr) {
  std::vector<ApiKeyEntry> entries;
  for (auto& [key, e] : keys) {
    ApiKeyEntry made = *KeyTable::make_entry(e.id, key);
    made.requests_per_minute = e.requests_per_minute;
    made.max_concurrent = e.max_concurrent;
    entries.push_back(made);
  }
  if (file_text) *file_text = keys_file_text(entries);
  TempDir dir;
  return std::make_shared<const KeyTable>(*KeyTable::load(write(dir.file("k"), keys_file_text(entries))));
}

TEST(AccessGate, WithoutKeysEveryoneIsAdmitted) {
  AccessGate gate(nullptr);
  EXPECT_FALSE(gate.enabled());
  EXPECT_EQ(gate.admit("", AccessGate::Clock::now()).verdict, Verdict::kAdmitted);
  AccessGate empty(std::make_shared<const KeyTable>(KeyTable::single("")));
  EXPECT_FALSE(empty.enabled());
}

TEST(AccessGate, OneApiKey) {
  AccessGate gate(std::make_shared<const KeyTable>(KeyTable::single("SeKrit-42")));
  const auto now = AccessGate::Clock::now();
  const Admission ok = gate.admit("bearer SeKrit-42", now);
  EXPECT_EQ(ok.verdict, Verdict::kAdmitted);
  EXPECT_EQ(ok.key_id, "api_key");
  for (const char* refused : {"", "Bearer sekrit-42", "Bearer SeKrit-4", "SeKrit-42", "Basic SeKrit-42"})
    EXPECT_EQ(gate.admit(refused, now).verdict, Verdict::kUnauthorized) << refused;
}

TEST(AccessGate, RequestsPerMinuteSlideAndSayWhenToComeBack) {
  AccessGate gate(table_of({{"kb", {.id = "bob", .requests_per_minute = 3}}}));
  const auto t0 = AccessGate::Clock::now();
  for (int i = 0; i < 3; ++i) {
    const Admission a = gate.admit("Bearer kb", t0 + std::chrono::seconds(10 * i));
    ASSERT_EQ(a.verdict, Verdict::kAdmitted) << i;
    gate.release(a.key_id);
  }
  const Admission limited = gate.admit("Bearer kb", t0 + 25s);
  EXPECT_EQ(limited.verdict, Verdict::kRateLimited);
  EXPECT_EQ(limited.key_id, "bob");
  EXPECT_EQ(limited.retry_after_s, 35);  // the first request leaves the window at t0 + 60 s
  EXPECT_NE(limited.message.find("3 per minute"), std::string::npos) << limited.message;
  EXPECT_EQ(gate.admit("Bearer kb", t0 + 60s).verdict, Verdict::kAdmitted);
  // A refused request did not count: the window holds t0+10, t0+20, t0+60.
  EXPECT_EQ(gate.admit("Bearer kb", t0 + 69s).verdict, Verdict::kRateLimited);
  EXPECT_EQ(gate.admit("Bearer kb", t0 + 70s).verdict, Verdict::kAdmitted);
}

TEST(AccessGate, ConcurrentRequestsAreCountedUntilReleased) {
  AccessGate gate(table_of({{"ka", {.id = "alice", .max_concurrent = 2}}, {"kc", {.id = "carol"}}}));
  const auto now = AccessGate::Clock::now();
  ASSERT_EQ(gate.admit("Bearer ka", now).verdict, Verdict::kAdmitted);
  ASSERT_EQ(gate.admit("Bearer ka", now).verdict, Verdict::kAdmitted);
  const Admission third = gate.admit("Bearer ka", now);
  EXPECT_EQ(third.verdict, Verdict::kRateLimited);
  EXPECT_EQ(third.retry_after_s, 1);
  EXPECT_NE(third.message.find("concurrent"), std::string::npos);
  // Another key has limits of its own (none).
  for (int i = 0; i < 10; ++i) EXPECT_EQ(gate.admit("Bearer kc", now).verdict, Verdict::kAdmitted);
  gate.release("alice");
  EXPECT_EQ(gate.admit("Bearer ka", now).verdict, Verdict::kAdmitted);
}

TEST(AccessGate, AReloadChangesTheKeysAndKeepsTheCounts) {
  AccessGate gate(table_of({{"ka", {.id = "alice", .max_concurrent = 1}}}));
  const auto now = AccessGate::Clock::now();
  ASSERT_EQ(gate.admit("Bearer ka", now).verdict, Verdict::kAdmitted);
  // alice's key changes, dave is new; alice's request in flight still counts.
  gate.replace(table_of({{"ka2", {.id = "alice", .max_concurrent = 1}}, {"kd", {.id = "dave"}}}));
  EXPECT_EQ(gate.admit("Bearer ka", now).verdict, Verdict::kUnauthorized);
  EXPECT_EQ(gate.admit("Bearer ka2", now).verdict, Verdict::kRateLimited);
  EXPECT_EQ(gate.admit("Bearer kd", now).verdict, Verdict::kAdmitted);
  gate.release("alice");
  EXPECT_EQ(gate.admit("Bearer ka2", now).verdict, Verdict::kAdmitted);
}

TEST(AuditLog, AppendsWholeJsonLinesToAPrivateFile) {
  TempDir dir;
  const std::string path = dir.file("audit.jsonl");
  {
    auto log = AuditLog::open(path);
    ASSERT_TRUE(log.has_value()) << log.error().to_string();
    (*log)->write({{"route", "/v1/models"}, {"status", 200}});
    (*log)->write({{"text", "bad \xff byte"}});
  }
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  {
    auto log = AuditLog::open(path);  // appends
    ASSERT_TRUE(log.has_value());
    (*log)->write({{"status", 401}});
  }
  std::ifstream in(path);
  std::string line;
  std::vector<nlohmann::json> lines;
  while (std::getline(in, line)) lines.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["status"], 200);
  EXPECT_EQ(lines[2]["status"], 401);
  chmod(path.c_str(), 0644);
  auto loose = AuditLog::open(path);
  ASSERT_FALSE(loose.has_value());
  EXPECT_NE(loose.error().message().find("chmod 600"), std::string::npos);
}

TEST(PrivateFile, WriteReplacesWithMode0600AndReadRefusesLooseModes) {
  TempDir dir;
  const std::string path = dir.file("secret");
  umask(0022);
  ASSERT_TRUE(write_private_file(path, "one").ok());
  ASSERT_TRUE(write_private_file(path, "two").ok());
  auto text = read_private_file(path, "secret");
  ASSERT_TRUE(text.has_value());
  EXPECT_EQ(*text, "two");
  chmod(path.c_str(), 0640);
  auto refused = read_private_file(path, "secret");
  ASSERT_FALSE(refused.has_value());
  EXPECT_NE(refused.error().message().find("has mode 0640"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(UtcTimestamp, IsRfc3339WithMilliseconds) {
  const std::string t = utc_timestamp();
  ASSERT_EQ(t.size(), 24u) << t;
  EXPECT_EQ(t[4], '-');
  EXPECT_EQ(t[10], 'T');
  EXPECT_EQ(t[19], '.');
  EXPECT_EQ(t.back(), 'Z');
}

}  // namespace
}  // namespace ponder::coordinator::http
