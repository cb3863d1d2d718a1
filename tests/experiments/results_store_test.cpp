// The results store: schema, resume keys, failed rows replaced when retried, meta.
#include "experiments/results_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>

#include "experiments/sweep_spec.h"

namespace ponder::experiments {
namespace {

std::string temp_db() {
  const std::string dir = std::filesystem::temp_directory_path() /
                          ("ponder-store-" + std::to_string(getpid()) + "-" +
                           ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir + "/results.sqlite";
}

int64_t count(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr);
  int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

TEST(ResultsStore, ResumeKeysAndRetriedFailures) {
  const std::string path = temp_db();
  int64_t point = 0;
  {
    auto store = ResultsStore::open(path);
    ASSERT_TRUE(store) << store.error().message();
    ASSERT_TRUE((*store)->set_meta("samples", "2").ok());
    ASSERT_TRUE((*store)->add_problems({{.id = "p1", .level = 2, .question = "What is 1 + 1?", .answer = "2"}}).ok());
    auto id = (*store)->upsert_point("pt-a", R"({"temperature":1.0})", "{}");
    ASSERT_TRUE(id);
    point = *id;
    std::vector<SampleRow> rows;
    for (int i = 0; i < 2; ++i)
      rows.push_back({.sample_key = sample_key("pt-a", "p1", i), .point_id = point, .problem_id = "p1",
                      .sample_index = i, .seed = 7 + i, .ok = i == 0, .error = "HTTP 503: busy",
                      .content = i == 0 ? std::optional<std::string>("\\boxed{2}") : std::nullopt,
                      .correct = true, .attempts = 4});
    ASSERT_TRUE((*store)->write_samples(rows).ok());
  }
  // Reopened (as a rerun does): the keys say what is done.
  auto store = ResultsStore::open(path);
  ASSERT_TRUE(store);
  auto status = (*store)->sample_status();
  ASSERT_TRUE(status);
  EXPECT_EQ(status->at("pt-a/p1/0"), "ok");
  EXPECT_EQ(status->at("pt-a/p1/1"), "failed");
  EXPECT_EQ(*(*store)->meta("samples"), std::optional<std::string>("2"));
  EXPECT_EQ(*(*store)->meta("nothing"), std::nullopt);
  // Upserting the same point keeps its id.
  EXPECT_EQ(*(*store)->upsert_point("pt-a", R"({"temperature":1.0})", R"({"run":2})"), point);
  EXPECT_EQ(count(path, "SELECT correct IS NULL FROM samples WHERE status = 'failed'"), 1);
  EXPECT_EQ(count(path, "SELECT COUNT(*) FROM samples WHERE status = 'failed' AND error = 'HTTP 503: busy'"), 1);
  // The retried sample replaces the failed row.
  ASSERT_TRUE((*store)->write_samples({{.sample_key = "pt-a/p1/1", .point_id = point, .problem_id = "p1",
                                        .sample_index = 1, .ok = true, .correct = false, .attempts = 1}}).ok());
  status = (*store)->sample_status();
  EXPECT_EQ(status->at("pt-a/p1/1"), "ok");
  EXPECT_EQ(count(path, "SELECT COUNT(*) FROM samples"), 2);
  EXPECT_EQ(count(path, "SELECT COUNT(*) FROM samples WHERE error IS NOT NULL"), 0);
  EXPECT_EQ(count(path, "SELECT COUNT(*) FROM pragma_journal_mode WHERE journal_mode = 'wal'"), 1);
}

TEST(ResultsStore, AWriteIsOneTransaction) {
  const std::string path = temp_db();
  auto store = ResultsStore::open(path);
  ASSERT_TRUE(store);
  ASSERT_TRUE((*store)->add_problems({{.id = "p1", .question = "q", .answer = "1"}}).ok());
  auto id = (*store)->upsert_point("pt-a", "{}", "{}");
  // The second row names an unknown point: the foreign key fails it, and the first row with it.
  Status s = (*store)->write_samples({{.sample_key = "k0", .point_id = *id, .problem_id = "p1", .ok = true},
                                      {.sample_key = "k1", .point_id = *id + 100, .problem_id = "p1", .ok = true}});
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(count(path, "SELECT COUNT(*) FROM samples"), 0);
}

void exec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* msg = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &msg), SQLITE_OK) << (msg ? msg : "");
  sqlite3_free(msg);
  sqlite3_close(db);
}

TEST(ResultsStore, RunsAndTheColumnsAddedSinceTheFirstSchema) {
  const std::string path = temp_db();
  // A store as the first release wrote it: samples without nominal_flops and run_id, no runs.
  exec(path, R"sql(
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE points (point_id INTEGER PRIMARY KEY, point_key TEXT UNIQUE NOT NULL,
  params_json TEXT NOT NULL, provenance_json TEXT);
CREATE TABLE problems (problem_id TEXT PRIMARY KEY, level INTEGER, question TEXT NOT NULL, answer TEXT NOT NULL);
CREATE TABLE samples (sample_key TEXT PRIMARY KEY, point_id INTEGER NOT NULL REFERENCES points(point_id),
  problem_id TEXT NOT NULL REFERENCES problems(problem_id), sample_index INTEGER NOT NULL,
  seed INTEGER, status TEXT NOT NULL, error TEXT, content TEXT, reasoning TEXT, extracted TEXT,
  correct INTEGER, prompt_tokens INTEGER, cached_tokens INTEGER, completion_tokens INTEGER,
  reasoning_tokens INTEGER, answer_tokens INTEGER, flops REAL, finish_reason TEXT,
  logprob_sum REAL, latency_s REAL, attempts INTEGER, finished_unix INTEGER);
INSERT INTO problems VALUES ('p1', 2, 'q', '1');
INSERT INTO points (point_key, params_json) VALUES ('pt-a', '{}');
INSERT INTO samples (sample_key, point_id, problem_id, sample_index, status) VALUES ('pt-a/p1/0', 1, 'p1', 0, 'ok');
)sql");
  auto store = ResultsStore::open(path);
  ASSERT_TRUE(store) << store.error().message();
  EXPECT_EQ(count(path, "SELECT COUNT(*) FROM pragma_table_info('samples') WHERE name IN ('nominal_flops', 'run_id')"), 2);
  EXPECT_EQ(count(path, "SELECT run_id IS NULL AND nominal_flops IS NULL FROM samples"), 1);  // the old row
  auto run = (*store)->begin_run(R"({"replicas":2})", R"({"server_url":"http://x/v1"})", 1000.25);
  ASSERT_TRUE(run) << run.error().message();
  ASSERT_TRUE((*store)->write_samples({{.sample_key = "pt-a/p1/1", .point_id = 1, .problem_id = "p1",
                                        .sample_index = 1, .ok = true, .nominal_flops = 5e6,
                                        .run_id = *run}}).ok());
  ASSERT_TRUE((*store)->end_run(*run, 1010.75).ok());
  EXPECT_EQ(count(path, "SELECT COUNT(*) FROM samples s JOIN runs r USING (run_id) "
                        "WHERE s.nominal_flops = 5e6 AND r.deployment_json = '{\"replicas\":2}' "
                        "AND r.finished_at - r.started_at = 10.5"), 1);
  // Opening it again changes nothing.
  store->reset();
  ASSERT_TRUE(ResultsStore::open(path));
  EXPECT_EQ(count(path, "SELECT COUNT(*) FROM pragma_table_info('samples')"), 24);
  // A sample naming a run that does not exist is refused (the foreign key).
  auto again = ResultsStore::open(path);
  EXPECT_FALSE((*again)->write_samples({{.sample_key = "k", .point_id = 1, .problem_id = "p1", .ok = true,
                                         .run_id = 99}}).ok());
}

}  // namespace
}  // namespace ponder::experiments
