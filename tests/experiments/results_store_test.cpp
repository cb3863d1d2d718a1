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

}  // namespace
}  // namespace ponder::experiments
