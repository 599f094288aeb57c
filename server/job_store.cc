#include "server/job_store.h"

#include <sqlite3.h>

#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/mutex.h"
#include "base/status_macros.h"
#include "server/sqlite_status.h"

namespace srn {
namespace {

constexpr int kBusyTimeoutMs = 5000;

absl::Status Error(sqlite3* db, int rc, const std::string& what, const std::string& path) {
  return SqliteError(db, rc, what, absl::StrCat("job store ", path));
}

struct StmtFinalizer {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

class SqliteJobStore final : public JobStore {
 public:
  SqliteJobStore(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}
  ~SqliteJobStore() override { sqlite3_close_v2(db_); }

  absl::Status Init() {
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, kBusyTimeoutMs);
    SRN_RETURN_IF_ERROR(Exec("PRAGMA synchronous = FULL"));
    return Exec(
        "CREATE TABLE IF NOT EXISTS training_jobs("
        "  id INTEGER PRIMARY KEY NOT NULL,"
        "  state INTEGER NOT NULL,"
        "  job BLOB NOT NULL)");
  }

  absl::Status Create(v1::Job* job) override {
    MutexLock lock(&mu_);
    SRN_ASSIGN_OR_RETURN(Stmt max, Prepare("SELECT coalesce(max(id), 0) FROM training_jobs"));
    int rc = sqlite3_step(max.get());
    if (rc != SQLITE_ROW) return Error(db_, rc, "find the next job id", path_);
    const int64_t id = sqlite3_column_int64(max.get(), 0) + 1;
    job->set_job_id(absl::StrCat("job-", id));
    return Write("INSERT INTO training_jobs(id, state, job) VALUES(?1, ?2, ?3)", id, *job, false);
  }

  absl::Status Update(const v1::Job& job) override {
    SRN_ASSIGN_OR_RETURN(const int64_t id, ParseJobNumber(job.job_id()));
    MutexLock lock(&mu_);
    return Write("UPDATE training_jobs SET state = ?2, job = ?3 WHERE id = ?1", id, job, true);
  }

  absl::StatusOr<std::vector<v1::Job>> LoadAll() override {
    MutexLock lock(&mu_);
    SRN_ASSIGN_OR_RETURN(Stmt stmt, Prepare("SELECT id, job FROM training_jobs ORDER BY id"));
    std::vector<v1::Job> jobs;
    for (;;) {
      const int rc = sqlite3_step(stmt.get());
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return Error(db_, rc, "read the jobs", path_);
      v1::Job job;
      const void* blob = sqlite3_column_blob(stmt.get(), 1);
      const int size = sqlite3_column_bytes(stmt.get(), 1);
      if (!job.ParseFromArray(blob, size)) {
        return absl::DataLossError(absl::StrCat("job store ", path_, ": job ",
                                                sqlite3_column_int64(stmt.get(), 0),
                                                " is not a readable job record"));
      }
      jobs.push_back(std::move(job));
    }
    return jobs;
  }

 private:
  absl::Status Exec(const char* sql) {
    const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return Error(db_, rc, absl::StrCat("execute \"", sql, "\""), path_);
    return absl::OkStatus();
  }

  absl::StatusOr<Stmt> Prepare(const char* sql) {
    sqlite3_stmt* raw = nullptr;
    const int rc = sqlite3_prepare_v2(db_, sql, -1, &raw, nullptr);
    Stmt stmt(raw);
    if (rc != SQLITE_OK) return Error(db_, rc, absl::StrCat("prepare \"", sql, "\""), path_);
    return stmt;
  }

  absl::Status Write(const char* sql, int64_t id, const v1::Job& job, bool must_exist)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    SRN_ASSIGN_OR_RETURN(Stmt stmt, Prepare(sql));
    const std::string bytes = job.SerializeAsString();
    sqlite3_bind_int64(stmt.get(), 1, id);
    sqlite3_bind_int(stmt.get(), 2, static_cast<int>(job.state()));
    sqlite3_bind_blob(stmt.get(), 3, bytes.data(), static_cast<int>(bytes.size()), SQLITE_STATIC);
    const int rc = sqlite3_step(stmt.get());
    if (rc != SQLITE_DONE) return Error(db_, rc, absl::StrCat("write ", job.job_id()), path_);
    if (must_exist && sqlite3_changes(db_) == 0) {
      return absl::NotFoundError(absl::StrCat("no job '", job.job_id(), "' in the store"));
    }
    return absl::OkStatus();
  }

  const std::string path_;
  sqlite3* const db_;
  Mutex mu_;
};

}  // namespace

absl::StatusOr<int64_t> ParseJobNumber(const std::string& job_id) {
  int64_t n = 0;
  if (!absl::StartsWith(job_id, "job-") || !absl::SimpleAtoi(job_id.substr(4), &n) || n < 1) {
    return absl::NotFoundError(absl::StrCat("no job '", job_id, "' (job ids look like job-7)"));
  }
  return n;
}

absl::StatusOr<std::unique_ptr<JobStore>> JobStore::Open(const std::string& path) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                                 nullptr);
  auto store = std::make_unique<SqliteJobStore>(path, db);  // closes `db` even when open failed
  if (rc != SQLITE_OK) return Error(db, rc, "open", path);
  SRN_RETURN_IF_ERROR(store->Init());
  return std::unique_ptr<JobStore>(std::move(store));
}

}  // namespace srn
