// slurm/ without a cluster: how ranks fill an allocation, the slurm: section's errors, Slurm's
// output parsed, the ranks' srun step, endpoint.json round trips.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "slurm/endpoint_file.h"
#include "slurm/job_layout.h"
#include "slurm/job_script.h"
#include "slurm/node_address.h"
#include "slurm/slurm_client.h"
#include "slurm/slurm_options.h"

namespace ponder::slurm {
namespace {

Expected<JobLayout> layout(int nodes, int replicas, int tp, int pp, bool cuda = false, int gpus = 0, int tasks = 0) {
  SlurmOptions s;
  s.nodes = nodes;
  s.gpus_per_node = gpus;
  s.tasks_per_node = tasks;
  return plan_job_layout(s, {.replicas = replicas, .tp = tp, .pp = pp, .cuda = cuda});
}

TEST(JobLayoutTest, FillsNodesInBlocks) {
  auto l = layout(2, 1, 8, 2, true, 8);
  ASSERT_TRUE(l) << l.error().message();
  EXPECT_EQ(l->tasks_per_node, 8);
  EXPECT_EQ(l->node_of(7), 0);
  EXPECT_EQ(l->node_of(8), 1);
  EXPECT_EQ(l->nodes_of_replica(0), (std::vector<int>{0, 1}));
  EXPECT_EQ(l->describe({"a1", "a2"}),
            "16 ranks = 1 replica x tp 8 x pp 2 on 2 nodes x 8 tasks, blocks of consecutive ranks per node\n"
            "  replica 0 stage 0: ranks 0-7 (tp 0-7) on a1\n"
            "  replica 0 stage 1: ranks 8-15 (tp 0-7) on a2\n");
  auto across = layout(2, 1, 2, 1);
  ASSERT_TRUE(across);
  EXPECT_NE(across->describe({"n1", "n2"}).find("ranks 0-1 (tp 0-1) on n1 + n2"), std::string::npos);
  auto four = layout(2, 4, 1, 1);
  ASSERT_TRUE(four);
  EXPECT_EQ(four->tasks_per_node, 2);
  EXPECT_EQ(four->nodes_of_replica(3), (std::vector<int>{1}));
}

TEST(JobLayoutTest, RefusesLayoutsThatDoNotFillTheAllocation) {
  auto msg = [](const Expected<JobLayout>& l) { return l ? std::string("ok") : l.error().message(); };
  EXPECT_NE(msg(layout(2, 3, 1, 1)).find("do not divide evenly over 2 nodes"), std::string::npos);
  EXPECT_NE(msg(layout(3, 1, 1, 1)).find("would leave 2 nodes allocated and idle"), std::string::npos);
  EXPECT_NE(msg(layout(2, 2, 1, 1, false, 0, 2)).find("must fill the allocation exactly"), std::string::npos);
  EXPECT_NE(msg(layout(1, 1, 3, 1, true, 8, 3)).find("tp 3 does not divide gpus_per_node 8"), std::string::npos);
  EXPECT_NE(msg(layout(2, 1, 4, 1, true, 4)).find("gives 2 ranks per node, but gpus_per_node is 4"),
            std::string::npos);
  EXPECT_NE(msg(layout(1, 1, 1, 1, true, 0)).find("backend cuda needs"), std::string::npos);
  // 3 ranks per node and replicas of 2: replica 1 would have a rank on each node.
  EXPECT_NE(msg(layout(2, 3, 2, 1)).find("would straddle nodes unevenly"), std::string::npos);
}

Status parse(const std::string& yaml, SlurmOptions* out = nullptr) {
  SlurmOptions o;
  Status st = parse_slurm_options(YAML::Load(yaml), "d.yaml: slurm: ", o);
  if (out) *out = o;
  return st;
}

TEST(SlurmOptionsTest, ParsesEveryKindOfValueAndNamesBadOnes) {
  SlurmOptions o;
  ASSERT_TRUE(parse("{nodes: 4, gpus_per_node: 8, gpu_request: gres, gpu_type: h100, exclusive: yes, "
                    "container_mounts: /a:/a, env: {NCCL_IB_HCA: mlx5}, extra_sbatch_args: [--x=1]}",
                    &o)
                  .ok());
  EXPECT_EQ(o.nodes, 4);
  EXPECT_EQ(o.gpu_request, GpuRequest::kGres);
  EXPECT_TRUE(o.exclusive);
  EXPECT_EQ(o.container_mounts, (std::vector<std::string>{"/a:/a"}));
  EXPECT_EQ(o.env.at("NCCL_IB_HCA"), "mlx5");
  EXPECT_EQ(parse("{nodez: 2}").message(),
            "d.yaml: slurm: unknown key 'nodez' (the keys are listed by ponder slurm submit --help)");
  EXPECT_EQ(parse("{nodes: two}").message(), "d.yaml: slurm: 'nodes' must be an integer in [1, 100000], got 'two'");
  EXPECT_EQ(parse("{requeue: sometimes}").message(), "d.yaml: slurm: 'requeue' must be true or false, got 'sometimes'");
  EXPECT_EQ(parse("{gpu_request: all}").message(),
            "d.yaml: slurm: 'gpu_request' must be gpus-per-node or gres, got 'all'");
  EXPECT_EQ(parse("{env: {1BAD: x}}").message(), "d.yaml: slurm: 'env': '1BAD' is not a variable name");
  EXPECT_EQ(parse("{partition: [a, b]}").message(), "d.yaml: slurm: 'partition' must be a single value");
  EXPECT_NE(parse("{signal_grace_s: 3}").message().find("give at least 10 s"), std::string::npos);
  // Written back and read again, the options are the same.
  YAML::Emitter e;
  emit_slurm_options(o, e);
  SlurmOptions again;
  ASSERT_TRUE(parse(e.c_str(), &again).ok()) << e.c_str();
  EXPECT_EQ(again.gpu_type, "h100");
  EXPECT_EQ(again.env, o.env);
  EXPECT_EQ(again.extra_sbatch_args, o.extra_sbatch_args);
}

TEST(SlurmClientTest, ParsesScontrolAndJobIds) {
  auto f = parse_scontrol_line("JobId=12 JobName=ponder tiny JobState=PENDING Reason=Resources Comment=ponder");
  EXPECT_EQ(f["JobId"], "12");
  EXPECT_EQ(f["JobName"], "ponder tiny");
  EXPECT_EQ(f["Reason"], "Resources");
  EXPECT_TRUE(valid_job_id("12"));
  EXPECT_TRUE(valid_job_id("12_3"));
  EXPECT_FALSE(valid_job_id("12;rm"));
  EXPECT_FALSE(valid_job_id("abc"));
  EXPECT_FALSE(valid_job_id("12_"));
  JobInfo j{.id = "1", .fields = {{"JobState", "REQUEUED"}}};
  EXPECT_TRUE(j.active());
  j.fields["JobState"] = "COMPLETED";
  EXPECT_FALSE(j.active());
}

TEST(SlurmClientTest, RequireNamesMissingCommands) {
  const std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
  setenv("PATH", "/nonexistent", 1);
  Status st = SlurmClient::require({"sbatch", "scancel"});
  setenv("PATH", path.c_str(), 1);
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("sbatch, scancel are not on PATH"), std::string::npos) << st.message();
}

TEST(JobScriptTest, EachReplicaIsAStepOnItsNodesWithItsShareOfGpus) {
  SlurmOptions s;
  s.nodes = 2;
  s.gpus_per_node = 8;
  s.gpu_type = "h100";
  s.output_dir = "/out";
  s.ponder = "/opt/ponder";
  s.container_image = "nvcr.io#ponder:1";
  s.container_mounts = {"/models:/models"};
  s.extra_srun_args = {"--gpu-bind=closest"};
  // 4 replicas of tp 4 on 2 nodes of 8 GPUs: two replicas per node.
  auto l = layout(2, 4, 4, 1, true, 8);
  ASSERT_TRUE(l) << l.error().message();
  const auto a = replica_step_command(s, *l, 3, "7", task_file_path("/out/7", 3, 1));
  auto has = [&](const std::string& w) { return std::find(a.begin(), a.end(), w) != a.end(); };
  EXPECT_EQ(a[0], "srun");
  for (const char* w : {"--mpi=pmix", "--relative=1", "--nodes=1", "--ntasks=4", "--ntasks-per-node=4", "--exact",
                        "--kill-on-bad-exit=1", "--gpus-per-node=h100:4", "--container-image=nvcr.io#ponder:1",
                        "--container-name=ponder-7", "--container-mounts=/models:/models,/out:/out",
                        "--gpu-bind=closest"})
    EXPECT_TRUE(has(w)) << w;
  EXPECT_EQ(std::vector<std::string>(a.end() - 4, a.end()),
            (std::vector<std::string>{"/opt/ponder", "slurm", "task", "/out/7/task.run1.replica3.json"}));
  // One replica over both nodes (tp 8 x pp 2): from node 0, 2 nodes of 8.
  auto big = layout(2, 1, 8, 2, true, 8);
  ASSERT_TRUE(big);
  s.gpu_request = GpuRequest::kGres;
  s.gpu_type = "";
  const auto b = replica_step_command(s, *big, 0, "7", "/t.json");
  for (const char* w : {"--relative=0", "--nodes=2", "--ntasks=16", "--ntasks-per-node=8", "--gres=gpu:8"})
    EXPECT_NE(std::find(b.begin(), b.end(), w), b.end()) << w;
  EXPECT_EQ(rank_log_path("/out/7", "7", 3, 1), "/out/7/rank-7_3.run1.log");
  EXPECT_EQ(replica_step_log_path("/out/7", 2, 0), "/out/7/replica2.run0.log");
}

TEST(JobScriptTest, RefusesWhatCannotGoIntoAScript) {
  JobScriptInput in;
  in.slurm.output_dir = "/out dir";
  EXPECT_NE(check_script_input(in).message().find("'output_dir' /out dir contains a space"), std::string::npos);
  in.slurm.output_dir = "/out";
  in.slurm.partition = "a\nb";
  EXPECT_NE(check_script_input(in).message().find("line break"), std::string::npos);
  in.slurm.partition = "";
  in.slurm.extra_sbatch_args = {"mail-type=FAIL"};
  EXPECT_NE(check_script_input(in).message().find("are sbatch options"), std::string::npos);
  in.slurm.extra_sbatch_args = {};
  in.deploy_yaml = "model: x\nPONDER_DEPLOY_YAML\n";
  EXPECT_FALSE(check_script_input(in).ok());
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(shell_quote("/a/b-c"), "/a/b-c");
}

TEST(EndpointFileTest, RoundTripsAndSecretsAreMode0600) {
  const std::string dir = ::testing::TempDir() + "/endpoint_test_" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  EXPECT_EQ(read_endpoint(dir).error().code(), StatusCode::kNotFound);
  EndpointRecord r{.state = "READY", .url = "http://10.0.0.1:5/v1", .port = 5, .job_id = "9", .restart_count = 2,
                   .replicas = 3, .healthy_replicas = 3};
  ASSERT_TRUE(write_endpoint(dir, r).ok());
  auto back = read_endpoint(dir);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->url, r.url);
  EXPECT_EQ(back->restart_count, 2);
  EXPECT_GT(back->updated_unix, 0);
  auto token = random_token();
  ASSERT_TRUE(token);
  EXPECT_EQ(token->size(), 64u);
  ASSERT_TRUE(write_private_file(dir + "/key", *token).ok());
  struct stat st{};
  ASSERT_EQ(stat((dir + "/key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ponder::slurm
