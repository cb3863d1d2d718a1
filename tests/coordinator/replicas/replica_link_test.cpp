// Authenticated, encrypted replica links (issue #17): the coordinator's ROUTER with CURVE and its
// ZAP allow-list, against a real `ponder replica` under mpirun that holds keys of `ponder keys
// generate`, and rogue DEALERs on loopback — without keys, with a key pair not on the allow-list,
// with a listed public key but a forged secret, with the wrong server key — that try to register,
// to send tokens for live requests, and to flood. Every process is started and stopped by pid and
// every wait is bounded.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "common/process_tree.h"
#include "coordinator/replicas/curve_keys.h"
#include "coordinator/replicas/in_process_dispatcher.h"
#include "coordinator/replicas/replica_pool.h"
#include "coordinator/replicas/wire.h"
#include "replica_test_support.h"

namespace ponder::coordinator {
namespace {

using namespace std::chrono_literals;
using namespace replica_test;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A command run to its end (killed after `timeout`): its exit status and what it printed.
struct Ran {
  int exit_code = -1;  // -1: killed or did not exit
  std::string output;  // stdout and stderr
};

Ran run_command(std::vector<std::string> words, std::chrono::seconds timeout = 60s) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return {};
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    dup2(fds[1], STDERR_FILENO);
    std::vector<char*> argv;
    for (auto& w : words) argv.push_back(w.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  Ran ran;
  const auto until = Clock::now() + timeout;
  while (Clock::now() < until) {
    pollfd p{.fd = fds[0], .events = POLLIN, .revents = 0};
    if (poll(&p, 1, 100) <= 0) continue;
    char buf[4096];
    const ssize_t n = read(fds[0], buf, sizeof(buf));
    if (n <= 0) break;
    ran.output.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  int status = 0;
  if (waitpid(pid, &status, WNOHANG) == 0) {
    const auto grace = Clock::now() + 5s;
    while (waitpid(pid, &status, WNOHANG) == 0 && Clock::now() < grace)
      std::this_thread::sleep_for(10ms);
    if (kill(pid, 0) == 0) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return ran;
    }
  }
  if (WIFEXITED(status)) ran.exit_code = WEXITSTATUS(status);
  return ran;
}

// The security mechanism (bytes 12-31 of its ZMTP 3 greeting) an endpoint announces to a peer that
// has sent the first 11 bytes of a greeting (signature and major version): what a packet capture
// of the handshake would show. The peer stops there, so the endpoint sends its whole greeting.
std::optional<std::string> zmtp_mechanism(const std::string& endpoint) {
  const size_t colon = endpoint.rfind(':');
  const int port = std::atoi(endpoint.c_str() + colon + 1);
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  timeval tv{.tv_sec = 5, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return std::nullopt;
  }
  const unsigned char mine[11] = {0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0x7F, 3};
  [[maybe_unused]] ssize_t sent = send(fd, mine, sizeof(mine), MSG_NOSIGNAL);
  unsigned char theirs[64] = {};
  size_t got = 0;
  while (got < sizeof(theirs)) {
    const ssize_t n = recv(fd, theirs + got, sizeof(theirs) - got, 0);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(fd);
  if (got < 32 || theirs[0] != 0xFF || theirs[9] != 0x7F || theirs[10] != 3) return std::nullopt;
  return std::string(reinterpret_cast<const char*>(theirs + 12),
                     strnlen(reinterpret_cast<const char*>(theirs + 12), 20));
}

// What this process writes to stderr (the pool's log) while it lives.
class StderrCapture {
 public:
  explicit StderrCapture(const std::string& path) : path_(path) {
    std::fflush(stderr);
    saved_ = dup(STDERR_FILENO);
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    dup2(fd, STDERR_FILENO);
    close(fd);
  }
  ~StderrCapture() { text(); }
  // Stops capturing (once) and returns what was written.
  std::string text() {
    if (saved_ >= 0) {
      std::fflush(stderr);
      dup2(saved_, STDERR_FILENO);
      close(saved_);
      saved_ = -1;
    }
    return slurp(path_);
  }

 private:
  std::string path_;
  int saved_ = -1;
};

int count_lines_with(const std::string& text, const std::string& part) {
  int n = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) n += line.find(part) != std::string::npos;
  return n;
}

class ReplicaLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ponder-replica-link-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    keys_ = root_ + "/keys";
    // Replica 0 is the real one; replica 1's key is listed but no replica of ours uses it.
    Ran made = run_command({kPonder, "keys", "generate", "--dir", keys_, "--replicas", "2"});
    ASSERT_EQ(made.exit_code, 0) << made.output;
  }
  void TearDown() override {
    if (pool_) pool_->drain(2s);
    for (pid_t g : groups_) {
      signal_tree(g, SIGKILL);
      waitpid(g, nullptr, 0);
    }
    pool_.reset();
    fs::remove_all(root_);
  }

  void start_pool(bool curve = true) {
    ReplicaPoolOptions options{
        .model = "test-model", .heartbeat = 50ms, .heartbeat_timeout = 1500ms};
    if (curve) {
      auto keys = load_curve_server_keys(keys_);
      ASSERT_TRUE(keys.has_value()) << keys.error().to_string();
      options.curve = *keys;
    }
    auto pool = ReplicaPool::start(std::move(options));
    ASSERT_TRUE(pool.has_value()) << pool.error().to_string();
    pool_ = std::move(*pool);
  }
  std::vector<std::string> replica_keys(int replica) const {
    return {"--curve-server-key", curve_server_public_path(keys_), "--curve-key",
            curve_replica_secret_path(keys_, replica)};
  }
  pid_t spawn_replica(const std::vector<std::string>& extra, const std::string& log) {
    const pid_t g = start_replica(pool_->endpoint(), 1, 1, kModel, extra, log);
    groups_.push_back(g);
    return g;
  }
  // The real replica, with replica 0's keys, registered.
  void add_real_replica() {
    spawn_replica(replica_keys(0), root_ + "/replica0.log");
    const auto until = Clock::now() + 120s;
    Status st;
    do {
      st = pool_->wait_for_replicas(1, 100ms);
      ASSERT_EQ(waitpid(groups_.back(), nullptr, WNOHANG), 0) << "the replica exited:\n"
                                                              << slurp(root_ + "/replica0.log");
    } while (!st.ok() && Clock::now() < until);
    ASSERT_TRUE(st.ok()) << st.to_string() << "\n" << slurp(root_ + "/replica0.log");
    real_pid_ = pool_->replicas().at(0).pid;
  }
  // Waits (bounded) for the replica process group `g` to exit; its exit code, or -1.
  int wait_exit(pid_t g, std::chrono::seconds timeout) {
    const auto until = Clock::now() + timeout;
    int status = 0;
    while (Clock::now() < until) {
      if (waitpid(g, &status, WNOHANG) == g) {
        groups_.erase(std::find(groups_.begin(), groups_.end(), g));
        signal_tree(g, SIGKILL);  // ranks left behind, if any
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(20ms);
    }
    return -1;
  }

  std::string root_, keys_;
  std::unique_ptr<ReplicaPool> pool_;
  std::vector<pid_t> groups_;
  int64_t real_pid_ = 0;
};

// What the in-process engine gives for mixed_requests(): the tokens a replica must give.
const std::map<int, Result>& expected_tokens() {
  static const std::map<int, Result> expected = [] {
    auto local =
        InProcessDispatcher::create({.model_dir = kModel, .threads = 1, .kv_cache_bytes = 8 << 20});
    EXPECT_TRUE(local.has_value()) << local.error().to_string();
    return run_all(**local, mixed_requests());
  }();
  return expected;
}

void expect_expected_tokens(const std::map<int, Result>& got, const char* when) {
  const auto requests = mixed_requests();
  const auto& expected = expected_tokens();
  for (size_t i = 0; i < requests.size(); ++i)
    for (int32_t s = 0; s < requests[i].n; ++s) {
      EXPECT_EQ(got.at(i).tokens.at(s), expected.at(i).tokens.at(s))
          << when << ": request " << i << " sample " << s;
      EXPECT_EQ(got.at(i).finish.at(s), "length") << when << ": request " << i << " sample " << s;
    }
}

TEST_F(ReplicaLinkTest, AReplicaWithListedKeysServesOverAnEncryptedLink) {
  const auto& expected = expected_tokens();
  ASSERT_FALSE(expected.empty());
  StderrCapture log(root_ + "/pool.log");
  start_pool();
  add_real_replica();
  expect_expected_tokens(run_all(*pool_, mixed_requests()), "with CURVE");
  const std::vector<ReplicaInfo> infos = pool_->replicas();
  ASSERT_EQ(infos.size(), 1u);
  EXPECT_TRUE(infos[0].healthy);
  EXPECT_EQ(pool_->stats().replica_link_refusals, 0);
  // On the wire: the ROUTER announces CURVE.
  EXPECT_EQ(zmtp_mechanism(pool_->endpoint()).value_or("no greeting"), "CURVE");
  const std::string text = log.text();
  // The registration names the allowed key it came with (ZAP's User-Id).
  EXPECT_EQ(count_lines_with(text, "CURVE key replica-0"), 1) << text;
  EXPECT_NE(slurp(root_ + "/replica0.log").find("CURVE: encrypted"), std::string::npos)
      << slurp(root_ + "/replica0.log");
}

TEST_F(ReplicaLinkTest, WithoutKeysTheLinkIsPlainZmtp) {
  start_pool(/*curve=*/false);
  EXPECT_EQ(zmtp_mechanism(pool_->endpoint()).value_or("no greeting"), "NULL");
}

enum class Rogue {
  kNoKeys,              // plain ZMTP
  kUnlistedKey,         // a CURVE pair of its own and the right server key: refused by ZAP
  kListedPublicForged,  // replica 1's public key (listed) with a secret key of its own
  kWrongServerKey,      // replica 1's whole pair (listed), but another server key
};

std::string rogue_name(const ::testing::TestParamInfo<Rogue>& info) {
  switch (info.param) {
    case Rogue::kNoKeys:
      return "NoKeys";
    case Rogue::kUnlistedKey:
      return "UnlistedKey";
    case Rogue::kListedPublicForged:
      return "ListedPublicKeyForgedSecret";
    case Rogue::kWrongServerKey:
      return "WrongServerKey";
  }
  return "?";
}

class RogueTest : public ReplicaLinkTest, public ::testing::WithParamInterface<Rogue> {
 protected:
  zmq::socket_t rogue_socket(zmq::context_t& ctx) {
    zmq::socket_t s(ctx, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, 0);
    s.set(zmq::sockopt::reconnect_ivl, 20);
    const std::string server = *read_curve_public_key(curve_server_public_path(keys_));
    const CurveKeyPair listed = *read_curve_secret_key(curve_replica_secret_path(keys_, 1));
    const CurveKeyPair own = *generate_curve_key_pair();
    switch (GetParam()) {
      case Rogue::kNoKeys:
        break;
      case Rogue::kUnlistedKey:
        s.set(zmq::sockopt::curve_serverkey, server);
        s.set(zmq::sockopt::curve_publickey, own.public_key);
        s.set(zmq::sockopt::curve_secretkey, own.secret_key);
        break;
      case Rogue::kListedPublicForged:
        s.set(zmq::sockopt::curve_serverkey, server);
        s.set(zmq::sockopt::curve_publickey, listed.public_key);
        s.set(zmq::sockopt::curve_secretkey, own.secret_key);
        break;
      case Rogue::kWrongServerKey:
        s.set(zmq::sockopt::curve_serverkey, own.public_key);
        s.set(zmq::sockopt::curve_publickey, listed.public_key);
        s.set(zmq::sockopt::curve_secretkey, listed.secret_key);
        break;
    }
    s.connect(pool_->endpoint());
    return s;
  }
};

// Everything a rogue would send: registrations (as a new replica and as the real one's index),
// heartbeats, tokens and fatal errors for the wire ids of live requests (ids are small integers
// from 1), and bytes that are no envelope at all.
std::vector<zmq::message_t> rogue_messages() {
  std::vector<zmq::message_t> out;
  for (int32_t index : {0, 1}) {
    wire::Envelope reg;
    wire::Register* r = reg.mutable_register_();
    r->set_model("test-model");
    r->set_kv_blocks(1000);
    r->set_block_size(16);
    r->set_max_running(256);
    r->set_max_n(64);
    r->set_replica_index(index);
    r->set_name("rogue");
    out.push_back(encode(reg));
  }
  wire::Envelope hb;
  hb.mutable_heartbeat()->set_ranks_ok(true);
  out.push_back(encode(hb));
  for (int64_t id = 1; id <= 64; ++id) {
    wire::Envelope t;
    wire::Tokens* tokens = t.mutable_tokens();
    tokens->set_request_id(id);
    tokens->add_tokens(7);
    tokens->add_tokens(7);
    tokens->set_finished(id % 2 == 0);
    out.push_back(encode(t));
    out.push_back(encode(error_envelope(Status(StatusCode::kInternal, "rogue"), id, true)));
  }
  out.emplace_back(std::string("not an envelope"));
  return out;
}

TEST_P(RogueTest, ARogueNeverRegistersNorReachesARequestNorStallsTheRealReplica) {
  const auto& expected = expected_tokens();
  ASSERT_FALSE(expected.empty());
  StderrCapture log(root_ + "/pool.log");
  start_pool();
  add_real_replica();

  zmq::context_t ctx(1);
  std::atomic<bool> done{false};
  std::atomic<int64_t> received{0}, sent{0}, churned{0};
  // The rogue: 8 sockets that keep sending everything, and a churn of fresh connections.
  std::thread rogue([&] {
    std::vector<zmq::socket_t> steady;
    for (int i = 0; i < 8; ++i) steady.push_back(rogue_socket(ctx));
    const auto until = Clock::now() + 6s;
    for (int round = 0; round < 10'000 && !done.load() && Clock::now() < until; ++round) {
      for (zmq::socket_t& s : steady) {
        for (zmq::message_t& m : rogue_messages())
          if (s.send(m, zmq::send_flags::dontwait)) ++sent;
        zmq::message_t in;
        while (s.recv(in, zmq::recv_flags::dontwait)) ++received;
      }
      if (churned.load() < 300) {
        zmq::socket_t fresh = rogue_socket(ctx);
        for (zmq::message_t& m : rogue_messages()) (void)fresh.send(m, zmq::send_flags::dontwait);
        zmq::pollitem_t item{static_cast<void*>(fresh), 0, ZMQ_POLLIN, 0};
        zmq::poll(&item, 1, std::chrono::milliseconds(10));
        zmq::message_t in;
        while (fresh.recv(in, zmq::recv_flags::dontwait)) ++received;
        ++churned;
      }
    }
  });
  // Meanwhile: the pool's view of its replicas, sampled.
  std::atomic<int64_t> most_replicas{0};
  std::thread watch([&] {
    while (!done.load()) {
      most_replicas = std::max<int64_t>(most_replicas.load(), pool_->stats().replicas);
      for (const ReplicaInfo& info : pool_->replicas())
        if (info.pid != real_pid_) most_replicas = 99;
      std::this_thread::sleep_for(5ms);
    }
  });
  // And the real replica's requests, batch after batch, each on time and with its own tokens.
  const auto flood_until = Clock::now() + 5s;
  int batches = 0;
  while ((Clock::now() < flood_until || batches < 2) && batches < 10'000) {
    const auto t0 = Clock::now();
    auto got = run_all(*pool_, mixed_requests(), 30s);
    EXPECT_LT(Clock::now() - t0, 30s) << "batch " << batches;
    expect_expected_tokens(got, "during the rogue's attempts");
    ++batches;
  }
  done = true;
  rogue.join();
  watch.join();

  EXPECT_GT(sent.load(), 0);
  EXPECT_GT(churned.load(), 10);
  EXPECT_EQ(received.load(), 0) << "the coordinator sent the rogue something";
  EXPECT_EQ(most_replicas.load(), 1) << "the pool counted the rogue as a replica";
  const std::vector<ReplicaInfo> infos = pool_->replicas();
  ASSERT_EQ(infos.size(), 1u);
  EXPECT_EQ(infos[0].pid, real_pid_);
  EXPECT_TRUE(infos[0].healthy);
  EXPECT_FALSE(infos[0].lost);
  const int64_t refusals = pool_->stats().replica_link_refusals;
  EXPECT_GT(refusals, 10);
  // Logged, with the peer, but not once per attempt.
  const std::string text = log.text();
  const int lines = count_lines_with(text, "refused a replica link from");
  EXPECT_GE(lines, 1) << text;
  EXPECT_LE(lines, 4) << text;
  if (GetParam() == Rogue::kUnlistedKey) {
    EXPECT_GE(count_lines_with(text, "from 127.0.0.1: its CURVE public key"), 1) << text;
  }
  EXPECT_EQ(count_lines_with(text, "registered:"), 1) << text;  // the real replica only
}

INSTANTIATE_TEST_SUITE_P(Rogues, RogueTest,
                         ::testing::Values(Rogue::kNoKeys, Rogue::kUnlistedKey,
                                           Rogue::kListedPublicForged, Rogue::kWrongServerKey),
                         rogue_name);

// A real replica whose keys do not fit stops at once and says why, instead of retrying until
// the coordinator timeout.
TEST_F(ReplicaLinkTest, AMisconfiguredReplicaStopsWithTheReason) {
  start_pool();
  const std::string other = root_ + "/other";
  Ran made = run_command({kPonder, "keys", "generate", "--dir", other, "--replicas", "1"});
  ASSERT_EQ(made.exit_code, 0) << made.output;
  struct Case {
    const char* what;
    std::vector<std::string> args;
    const char* said;
  };
  const std::vector<Case> cases = {
      {"an unlisted key",
       {"--curve-server-key", curve_server_public_path(keys_), "--curve-key",
        curve_replica_secret_path(other, 0)},
       "is not on its allow-list"},
      {"no keys", {}, "give --curve-server-key and --curve-key"},
      {"another server key",
       {"--curve-server-key", curve_server_public_path(other), "--curve-key",
        curve_replica_secret_path(keys_, 0)},
       "--curve-server-key is not its server.pub"},
  };
  for (const Case& c : cases) {
    const std::string log = root_ + "/misconfigured.log";
    const auto t0 = Clock::now();
    const pid_t g = spawn_replica(c.args, log);
    const int code = wait_exit(g, 60s);
    EXPECT_NE(code, 0) << c.what << ":\n" << slurp(log);
    EXPECT_NE(code, -1) << c.what << ": still running after 60 s";
    // Well before its 10 s coordinator timeout (mpirun's own start included).
    EXPECT_LT(Clock::now() - t0, 30s) << c.what;
    EXPECT_NE(slurp(log).find(c.said), std::string::npos) << c.what << ":\n" << slurp(log);
    EXPECT_EQ(pool_->stats().replicas, 0) << c.what;
  }
}

TEST_F(ReplicaLinkTest, AReplicaWithKeysRefusesAPlainCoordinator) {
  start_pool(/*curve=*/false);
  const std::string log = root_ + "/plain.log";
  const pid_t g = spawn_replica(replica_keys(0), log);
  const int code = wait_exit(g, 60s);
  EXPECT_NE(code, 0) << slurp(log);
  EXPECT_NE(code, -1);
  // Seen as a mechanism mismatch or as handshakes the coordinator closes, by which end is first.
  EXPECT_NE(slurp(log).find("runs without CURVE"), std::string::npos) << slurp(log);
}

// `ponder keys generate` as an operator runs it, and what `ponder replica` / `ponder serve` make
// of its files.
TEST_F(ReplicaLinkTest, KeysGenerateMakesPrivateFilesAndALeakedSecretIsRefusedByName) {
  const std::string dir = root_ + "/cli";
  Ran made = run_command({kPonder, "keys", "generate", "--dir", dir, "--replicas", "2"});
  ASSERT_EQ(made.exit_code, 0) << made.output;
  EXPECT_NE(made.output.find("made " + dir + "/allowed/replica-1.pub"), std::string::npos)
      << made.output;
  struct stat st {};
  ASSERT_EQ(stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  for (const std::string& key : {curve_server_secret_path(dir), curve_replica_secret_path(dir, 0),
                                 curve_replica_secret_path(dir, 1)}) {
    ASSERT_EQ(stat(key.c_str(), &st), 0) << key;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << key;
    EXPECT_TRUE(read_curve_secret_key(key).has_value()) << key;
  }
  auto server = load_curve_server_keys(dir);
  ASSERT_TRUE(server.has_value()) << server.error().to_string();
  EXPECT_EQ(server->allowed.size(), 2u);
  // Again, with more replicas: the old keys stay.
  const std::string before = slurp(curve_server_secret_path(dir));
  made = run_command({kPonder, "keys", "generate", "--dir", dir, "--replicas", "3"});
  ASSERT_EQ(made.exit_code, 0) << made.output;
  EXPECT_EQ(slurp(curve_server_secret_path(dir)), before);
  EXPECT_NE(made.output.find("kept " + curve_server_secret_path(dir)), std::string::npos)
      << made.output;

  // A secret key file others can read is refused, naming it, by the replica and by serve.
  const std::string leaked = curve_replica_secret_path(dir, 1);
  ASSERT_EQ(chmod(leaked.c_str(), 0644), 0);
  Ran replica =
      run_command({kPonder, "replica", "--coordinator", "tcp://127.0.0.1:9", "--model", kModel,
                   "--curve-server-key", curve_server_public_path(dir), "--curve-key", leaked});
  EXPECT_EQ(replica.exit_code, 2) << replica.output;
  EXPECT_NE(replica.output.find(leaked + " has mode 0644"), std::string::npos) << replica.output;
  EXPECT_NE(replica.output.find("chmod 600"), std::string::npos) << replica.output;
  Ran serve = run_command({kPonder, "serve", "--model", kModel, "--replicas", "2", "--port", "0",
                           "--curve-keys-dir", dir});
  EXPECT_EQ(serve.exit_code, 2) << serve.output;
  EXPECT_NE(serve.output.find(leaked + " has mode 0644"), std::string::npos) << serve.output;
  ASSERT_EQ(chmod(leaked.c_str(), 0600), 0);
  // Keys, but CURVE off: a contradiction, named.
  serve = run_command({kPonder, "serve", "--model", kModel, "--replicas", "2", "--port", "0",
                       "--curve-keys-dir", dir, "--replica-curve", "off"});
  EXPECT_EQ(serve.exit_code, 2) << serve.output;
  EXPECT_NE(serve.output.find("'replica_curve' is off"), std::string::npos) << serve.output;
  // --curve-key without the server's key.
  replica = run_command({kPonder, "replica", "--coordinator", "tcp://127.0.0.1:9", "--model",
                         kModel, "--curve-key", curve_replica_secret_path(dir, 0)});
  EXPECT_EQ(replica.exit_code, 2) << replica.output;
  EXPECT_NE(replica.output.find("go together"), std::string::npos) << replica.output;
}

}  // namespace
}  // namespace ponder::coordinator
