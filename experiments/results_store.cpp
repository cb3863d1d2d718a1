// SQLite through its C API: prepared statements, one transaction per request's samples.
#include "experiments/results_store.h"

#include <sqlite3.h>

#include <set>
#include <utility>

#include "common/check.h"
#include "common/strings.h"

namespace ponder::experiments {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS points (point_id INTEGER PRIMARY KEY, point_key TEXT UNIQUE NOT NULL,
  params_json TEXT NOT NULL, provenance_json TEXT);
CREATE TABLE IF NOT EXISTS problems (problem_id TEXT PRIMARY KEY, level INTEGER,
  question TEXT NOT NULL, answer TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS samples (sample_key TEXT PRIMARY KEY,
  point_id INTEGER NOT NULL REFERENCES points(point_id),
  problem_id TEXT NOT NULL REFERENCES problems(problem_id), sample_index INTEGER NOT NULL,
  seed INTEGER, status TEXT NOT NULL, error TEXT, content TEXT, reasoning TEXT, extracted TEXT,
  correct INTEGER, prompt_tokens INTEGER, cached_tokens INTEGER, completion_tokens INTEGER,
  reasoning_tokens INTEGER, answer_tokens INTEGER, flops REAL, finish_reason TEXT,
  logprob_sum REAL, latency_s REAL, attempts INTEGER, finished_unix INTEGER,
  nominal_flops REAL, run_id INTEGER REFERENCES runs(run_id));
CREATE TABLE IF NOT EXISTS runs (run_id INTEGER PRIMARY KEY, deployment_json TEXT NOT NULL,
  provenance_json TEXT, started_at REAL NOT NULL, finished_at REAL);
)sql";

// Columns added after the first release of the schema: a store written before gets them (NULL
// in its old rows) when it is opened.
constexpr std::pair<const char*, const char*> kAddedSampleColumns[] = {
    {"nominal_flops", "REAL"}, {"run_id", "INTEGER REFERENCES runs(run_id)"}};

// A prepared statement, finalized on scope exit.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Status prepared() const {
    if (rc_ == SQLITE_OK) return {};
    return error(StatusCode::kInternal, "sqlite: %s", sqlite3_errmsg(db_));
  }
  void bind(int i, const std::string& v) { sqlite3_bind_text(stmt_, i, v.data(), (int)v.size(), SQLITE_TRANSIENT); }
  void bind(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  void bind(int i, double v) { sqlite3_bind_double(stmt_, i, v); }
  template <class T>
  void bind(int i, const std::optional<T>& v) {
    if (v) bind(i, *v); else sqlite3_bind_null(stmt_, i);
  }
  void bind(int i, const std::optional<bool>& v) {
    if (v) bind(i, int64_t{*v}); else sqlite3_bind_null(stmt_, i);
  }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int step() { return sqlite3_step(stmt_); }
  void reset() { sqlite3_reset(stmt_); sqlite3_clear_bindings(stmt_); }
  std::string text(int col) {
    const unsigned char* t = sqlite3_column_text(stmt_, col);
    return t ? reinterpret_cast<const char*>(t) : "";
  }
  int64_t int64(int col) { return sqlite3_column_int64(stmt_, col); }
  Status done(int rc) const {
    if (rc == SQLITE_DONE || rc == SQLITE_ROW) return {};
    return error(StatusCode::kInternal, "sqlite: %s", sqlite3_errmsg(db_));
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

}  // namespace

Expected<std::unique_ptr<ResultsStore>> ResultsStore::open(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
    std::string why = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return error(StatusCode::kUnavailable, "%s: cannot open the results store: %s", path.c_str(), why.c_str());
  }
  std::unique_ptr<ResultsStore> store(new ResultsStore(db));
  // WAL: the report (or sqlite3 by hand) can read while a run writes; a killed run leaves every
  // committed transaction intact. The busy timeout covers such a reader's checkpoint.
  sqlite3_busy_timeout(db, 10'000);
  PONDER_RETURN_IF_ERROR(store->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"));
  if (Status s = store->exec(kSchema); !s.ok()) return tl::unexpected(s.with_context(path));
  if (Status s = store->add_missing_columns(); !s.ok()) return tl::unexpected(s.with_context(path));
  return store;
}

Status ResultsStore::add_missing_columns() {
  Stmt q(db_, "SELECT name FROM pragma_table_info('samples')");
  PONDER_RETURN_IF_ERROR(q.prepared());
  std::set<std::string> have;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) have.insert(q.text(0));
  PONDER_RETURN_IF_ERROR(q.done(rc));
  for (const auto& [name, type] : kAddedSampleColumns)
    if (!have.count(name))
      PONDER_RETURN_IF_ERROR(exec(strformat("ALTER TABLE samples ADD COLUMN %s %s", name, type).c_str()));
  return {};
}

Expected<int64_t> ResultsStore::begin_run(const std::string& deployment_json, const std::string& provenance_json,
                                          double started_at) {
  Stmt q(db_, "INSERT INTO runs (deployment_json, provenance_json, started_at) VALUES (?, ?, ?)");
  PONDER_RETURN_IF_ERROR(q.prepared());
  q.bind(1, deployment_json);
  q.bind(2, provenance_json);
  q.bind(3, started_at);
  PONDER_RETURN_IF_ERROR(q.done(q.step()));
  return static_cast<int64_t>(sqlite3_last_insert_rowid(db_));
}

Status ResultsStore::end_run(int64_t run_id, double finished_at) {
  Stmt q(db_, "UPDATE runs SET finished_at = ? WHERE run_id = ?");
  PONDER_RETURN_IF_ERROR(q.prepared());
  q.bind(1, finished_at);
  q.bind(2, run_id);
  return q.done(q.step());
}

ResultsStore::~ResultsStore() { sqlite3_close(db_); }

Status ResultsStore::exec(const char* sql) {
  char* msg = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &msg) == SQLITE_OK) return {};
  std::string why = msg ? msg : sqlite3_errmsg(db_);
  sqlite3_free(msg);
  return error(StatusCode::kInternal, "sqlite: %s", why.c_str());
}

Expected<std::optional<std::string>> ResultsStore::meta(const std::string& key) {
  Stmt q(db_, "SELECT value FROM meta WHERE key = ?");
  PONDER_RETURN_IF_ERROR(q.prepared());
  q.bind(1, key);
  const int rc = q.step();
  if (rc == SQLITE_ROW) return std::optional<std::string>(q.text(0));
  PONDER_RETURN_IF_ERROR(q.done(rc));
  return std::optional<std::string>();
}

Status ResultsStore::set_meta(const std::string& key, const std::string& value) {
  Stmt q(db_, "INSERT INTO meta (key, value) VALUES (?, ?) "
              "ON CONFLICT(key) DO UPDATE SET value = excluded.value");
  PONDER_RETURN_IF_ERROR(q.prepared());
  q.bind(1, key);
  q.bind(2, value);
  return q.done(q.step());
}

Expected<int64_t> ResultsStore::upsert_point(const std::string& point_key,
                                             const std::string& params_json,
                                             const std::string& provenance_json) {
  Stmt up(db_, "INSERT INTO points (point_key, params_json, provenance_json) VALUES (?, ?, ?) "
               "ON CONFLICT(point_key) DO UPDATE SET provenance_json = excluded.provenance_json");
  PONDER_RETURN_IF_ERROR(up.prepared());
  up.bind(1, point_key);
  up.bind(2, params_json);
  up.bind(3, provenance_json);
  PONDER_RETURN_IF_ERROR(up.done(up.step()));
  Stmt q(db_, "SELECT point_id FROM points WHERE point_key = ?");
  PONDER_RETURN_IF_ERROR(q.prepared());
  q.bind(1, point_key);
  if (q.step() != SQLITE_ROW) return error(StatusCode::kInternal, "sqlite: point %s vanished", point_key.c_str());
  return q.int64(0);
}

Status ResultsStore::in_transaction(const std::function<Status()>& body) {
  PONDER_RETURN_IF_ERROR(exec("BEGIN"));
  Status st = body();
  if (!st.ok()) {
    (void)exec("ROLLBACK");
    return st;
  }
  return exec("COMMIT");
}

Status ResultsStore::add_problems(const std::vector<Problem>& problems) {
  return in_transaction([&] {
    Stmt q(db_, "INSERT OR IGNORE INTO problems (problem_id, level, question, answer) VALUES (?, ?, ?, ?)");
    Status st = q.prepared();
    for (size_t i = 0; st.ok() && i < problems.size(); ++i) {
      const Problem& p = problems[i];
      q.bind(1, p.id);
      q.bind(2, p.level ? std::optional<int64_t>(*p.level) : std::nullopt);
      q.bind(3, p.question);
      q.bind(4, p.answer);
      st = q.done(q.step());
      q.reset();
    }
    return st;
  });
}

Expected<std::map<std::string, std::string>> ResultsStore::sample_status() {
  Stmt q(db_, "SELECT sample_key, status FROM samples");
  PONDER_RETURN_IF_ERROR(q.prepared());
  std::map<std::string, std::string> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) out[q.text(0)] = q.text(1);
  PONDER_RETURN_IF_ERROR(q.done(rc));
  return out;
}

Status ResultsStore::write_samples(const std::vector<SampleRow>& rows) {
  return in_transaction([&] {
    Stmt q(db_, "INSERT OR REPLACE INTO samples (sample_key, point_id, problem_id, sample_index, "
                "seed, status, error, content, reasoning, extracted, correct, prompt_tokens, "
                "cached_tokens, completion_tokens, reasoning_tokens, answer_tokens, flops, "
                "finish_reason, logprob_sum, latency_s, attempts, finished_unix, nominal_flops, run_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    Status st = q.prepared();
    for (size_t i = 0; st.ok() && i < rows.size(); ++i) {
      const SampleRow& r = rows[i];
      int c = 1;
      q.bind(c++, r.sample_key);
      q.bind(c++, r.point_id);
      q.bind(c++, r.problem_id);
      q.bind(c++, r.sample_index);
      q.bind(c++, r.seed);
      q.bind(c++, std::string(r.ok ? "ok" : "failed"));
      q.bind(c++, r.ok ? std::nullopt : std::optional<std::string>(r.error));
      q.bind(c++, r.content);
      q.bind(c++, r.reasoning);
      q.bind(c++, r.extracted);
      q.bind(c++, r.ok ? r.correct : std::nullopt);
      q.bind(c++, r.prompt_tokens);
      q.bind(c++, r.cached_tokens);
      q.bind(c++, r.completion_tokens);
      q.bind(c++, r.reasoning_tokens);
      q.bind(c++, r.answer_tokens);
      q.bind(c++, r.flops);
      q.bind(c++, r.finish_reason);
      q.bind(c++, r.logprob_sum);
      q.bind(c++, r.latency_s);
      q.bind(c++, r.attempts);
      q.bind(c++, r.finished_unix);
      q.bind(c++, r.nominal_flops);
      q.bind(c++, r.run_id);
      st = q.done(q.step());
      q.reset();
    }
    return st;
  });
}

}  // namespace ponder::experiments
