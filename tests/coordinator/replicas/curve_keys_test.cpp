// CURVE key files and keys directories (coordinator/replicas/curve_keys.h): what `ponder keys
// generate` makes, what loads, and what is refused with the file named.
#include "coordinator/replicas/curve_keys.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace ponder::coordinator {
namespace {

namespace fs = std::filesystem;

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

unsigned mode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

class CurveKeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ponder-curve-keys-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    dir_ = root_ + "/keys";
  }
  void TearDown() override { fs::remove_all(root_); }
  std::string root_, dir_;
};

TEST_F(CurveKeysTest, ThisLibzmqHasCurve) {
  EXPECT_TRUE(curve_available().ok()) << curve_available().message();
}

TEST_F(CurveKeysTest, AGeneratedDirectoryHasPrivateSecretsAndLoads) {
  std::vector<std::string> made, kept;
  ASSERT_TRUE(generate_curve_keys_dir(dir_, 2, &made, &kept).ok());
  EXPECT_TRUE(kept.empty());
  EXPECT_EQ(made.size(), 2u + 2u * 3u);  // server pair; per replica its pair and allowed/ copy
  EXPECT_EQ(mode_of(dir_), 0700u);
  for (const std::string& key : {curve_server_secret_path(dir_), curve_replica_secret_path(dir_, 0),
                                 curve_replica_secret_path(dir_, 1)})
    EXPECT_EQ(mode_of(key), 0600u) << key;
  EXPECT_EQ(mode_of(curve_server_public_path(dir_)), 0644u);

  auto server = load_curve_server_keys(dir_);
  ASSERT_TRUE(server.has_value()) << server.error().to_string();
  ASSERT_EQ(server->allowed.size(), 2u);
  EXPECT_EQ(server->allowed[0].name, "replica-0");
  EXPECT_EQ(server->allowed[1].name, "replica-1");
  auto server_pub = read_curve_public_key(curve_server_public_path(dir_));
  ASSERT_TRUE(server_pub.has_value());
  EXPECT_EQ(*curve_public_key(server->secret_key), *server_pub);

  for (int r = 0; r < 2; ++r) {
    auto client =
        load_curve_client_keys(curve_server_public_path(dir_), curve_replica_secret_path(dir_, r));
    ASSERT_TRUE(client.has_value()) << client.error().to_string();
    EXPECT_EQ(client->server_key, *server_pub);
    EXPECT_EQ(client->own.public_key, server->allowed[r].public_key);
    EXPECT_EQ(client->own.public_key, *read_curve_public_key(curve_replica_public_path(dir_, r)));
    EXPECT_NE(client->own.secret_key, server->secret_key);
  }
  // The key files never hold the other half where it does not belong.
  EXPECT_EQ(slurp(curve_server_public_path(dir_)).find(server->secret_key), std::string::npos);
}

TEST_F(CurveKeysTest, ASecretKeyOthersCanReadIsRefusedNamingTheFile) {
  ASSERT_TRUE(generate_curve_keys_dir(dir_, 1).ok());
  const std::string key = curve_replica_secret_path(dir_, 0);
  ASSERT_EQ(chmod(key.c_str(), 0644), 0);
  auto read = read_curve_secret_key(key);
  ASSERT_FALSE(read.has_value());
  const std::string msg = read.error().message();
  EXPECT_NE(msg.find(key), std::string::npos) << msg;
  EXPECT_NE(msg.find("0644"), std::string::npos) << msg;
  EXPECT_NE(msg.find("chmod 600"), std::string::npos) << msg;
  auto client = load_curve_client_keys(curve_server_public_path(dir_), key);
  ASSERT_FALSE(client.has_value());
  EXPECT_NE(client.error().message().find(key), std::string::npos);

  const std::string server_key = curve_server_secret_path(dir_);
  ASSERT_EQ(chmod(server_key.c_str(), 0640), 0);
  auto server = load_curve_server_keys(dir_);
  ASSERT_FALSE(server.has_value());
  EXPECT_NE(server.error().message().find(server_key), std::string::npos)
      << server.error().message();
}

TEST_F(CurveKeysTest, ASecondRunKeepsEveryKeyAddsNewReplicasAndKeepsRevocations) {
  ASSERT_TRUE(generate_curve_keys_dir(dir_, 2).ok());
  const std::string server_before = slurp(curve_server_secret_path(dir_));
  const std::string replica0_before = slurp(curve_replica_secret_path(dir_, 0));
  // Revoke replica 1.
  ASSERT_TRUE(fs::remove(curve_allowed_dir(dir_) + "/replica-1.pub"));
  std::vector<std::string> made, kept;
  ASSERT_TRUE(generate_curve_keys_dir(dir_, 3, &made, &kept).ok());
  EXPECT_EQ(slurp(curve_server_secret_path(dir_)), server_before);
  EXPECT_EQ(slurp(curve_replica_secret_path(dir_, 0)), replica0_before);
  EXPECT_EQ(kept.size(), 3u);  // server, replica-0, replica-1
  EXPECT_EQ(made.size(), 3u);  // replica-2's pair and allowed/ copy
  auto server = load_curve_server_keys(dir_);
  ASSERT_TRUE(server.has_value()) << server.error().to_string();
  ASSERT_EQ(server->allowed.size(), 2u);
  EXPECT_EQ(server->allowed[0].name, "replica-0");
  EXPECT_EQ(server->allowed[1].name, "replica-2");
}

TEST_F(CurveKeysTest, AnAllowListOthersCanWriteToIsRefused) {
  ASSERT_TRUE(generate_curve_keys_dir(dir_, 1).ok());
  const std::string allowed = curve_allowed_dir(dir_);
  ASSERT_EQ(chmod(allowed.c_str(), 0777), 0);
  auto keys = read_allowed_keys(allowed);
  ASSERT_FALSE(keys.has_value());
  EXPECT_NE(keys.error().message().find(allowed), std::string::npos) << keys.error().message();
  ASSERT_EQ(chmod(allowed.c_str(), 0755), 0);
  const std::string pub = allowed + "/replica-0.pub";
  ASSERT_EQ(chmod(pub.c_str(), 0666), 0);
  keys = read_allowed_keys(allowed);
  ASSERT_FALSE(keys.has_value());
  EXPECT_NE(keys.error().message().find(pub), std::string::npos) << keys.error().message();
  ASSERT_TRUE(fs::remove(pub));
  keys = read_allowed_keys(allowed);
  ASSERT_FALSE(keys.has_value());
  EXPECT_NE(keys.error().message().find("no *.pub key"), std::string::npos)
      << keys.error().message();
}

TEST_F(CurveKeysTest, WhatIsNotAKeyIsRefused) {
  ASSERT_TRUE(generate_curve_keys_dir(dir_, 1).ok());
  const std::string bad = root_ + "/bad.key";
  {
    std::ofstream out(bad);
    out << "# a comment\nnot-a-key\n";
  }
  ASSERT_EQ(chmod(bad.c_str(), 0600), 0);
  auto read = read_curve_secret_key(bad);
  ASSERT_FALSE(read.has_value());
  EXPECT_NE(read.error().message().find("is not a CURVE secret key file"), std::string::npos);
  EXPECT_FALSE(is_curve_key(std::string(40, '"')));  // 40 characters, not z85
  EXPECT_FALSE(is_curve_key("short"));
  // A server.pub of another pair is caught before any replica is given it.
  auto other = generate_curve_key_pair();
  ASSERT_TRUE(other.has_value());
  ASSERT_TRUE(
      write_curve_public_key(curve_server_public_path(dir_), other->public_key, "someone else")
          .ok());
  auto server = load_curve_server_keys(dir_);
  ASSERT_FALSE(server.has_value());
  EXPECT_NE(server.error().message().find("is not the public key of"), std::string::npos);
}

}  // namespace
}  // namespace ponder::coordinator
