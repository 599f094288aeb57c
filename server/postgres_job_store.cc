#include "server/postgres_job_store.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "base/status_macros.h"

namespace srn {
namespace {

using pg::Params;
using pg::ReadBigEndian;
using pg::Result;

constexpr char kCreateSchemaSql[] =
    "CREATE TABLE IF NOT EXISTS srn_training_jobs("
    "  id BIGSERIAL PRIMARY KEY,"
    "  state INT4 NOT NULL,"
    "  job BYTEA NOT NULL,"
    "  dataset BYTEA NOT NULL,"
    "  trainer TEXT,"
    "  heartbeat_at TIMESTAMPTZ,"
    "  heartbeat_timeout FLOAT8,"
    "  cancel_requested BOOL NOT NULL DEFAULT false,"
    "  version INT8 NOT NULL DEFAULT 1);"
    "CREATE INDEX IF NOT EXISTS srn_training_jobs_by_state ON srn_training_jobs(state, id);";
// Serializes schema creation between processes starting together.
constexpr char kSchemaLockSql[] = "SELECT pg_advisory_xact_lock(7393628721)";

std::string Num(int64_t n) { return absl::StrCat(n); }

// Ends `job` now, in `state`, for `reason`.
void End(v1::Job* job, v1::JobState state, const std::string& reason) {
  job->set_state(state);
  job->set_reason(reason);
  job->set_finished_unix_ms(NowUnixMs());
}

class Recorder final : public JobStore {
 public:
  Recorder(PostgresJobStore* store, std::string trainer)
      : store_(store), trainer_(std::move(trainer)) {}
  absl::Status Create(v1::Job*) override {
    return absl::FailedPreconditionError(
        "a trainer claims jobs recorded by servers; it records "
        "no new ones");
  }
  absl::Status Update(const v1::Job& job) override {
    return store_->Record(job, trainer_).status();
  }
  absl::StatusOr<std::vector<v1::Job>> LoadAll() override { return std::vector<v1::Job>(); }

 private:
  PostgresJobStore* const store_;
  const std::string trainer_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<PostgresJobStore>> PostgresJobStore::Open(const std::string& uri) {
  const std::string who = absl::StrCat("training jobs in ", pg::Redacted(uri));
  SRN_ASSIGN_OR_RETURN(pg::Conn conn, pg::Connect(uri, who));
  SRN_RETURN_IF_ERROR(pg::InTransaction(conn.get(), who, [&] {
    SRN_RETURN_IF_ERROR(pg::Exec(conn.get(), kSchemaLockSql, who));
    return pg::Exec(conn.get(), kCreateSchemaSql, who);
  }));
  return std::unique_ptr<PostgresJobStore>(new PostgresJobStore(who, std::move(conn)));
}

absl::StatusOr<v1::Job> PostgresJobStore::ParseJob(const PGresult* r, int row, int column) const {
  v1::Job job;
  if (!job.ParseFromArray(PQgetvalue(r, row, column), PQgetlength(r, row, column))) {
    return absl::DataLossError(
        absl::StrCat(who_, ": a job record (row ", row, ") is not a readable srn.v1.Job"));
  }
  return job;
}

absl::Status PostgresJobStore::Write(int64_t id, const v1::Job& job, const char* more_sql) {
  Params p;
  p.Text(Num(id));
  p.Text(Num(job.state()));
  p.Bytes(job.SerializeAsString());
  const std::string sql =
      absl::StrCat("UPDATE srn_training_jobs SET state = $2, job = $3, version = version + 1",
                   more_sql, " WHERE id = $1");
  return pg::Query(conn_.get(), sql.c_str(), std::move(p), who_,
                   absl::StrCat("record ", job.job_id()))
      .status();
}

absl::Status PostgresJobStore::Create(v1::Job* job, const v1::DatasetRef& dataset) {
  MutexLock lock(&mu_);
  return pg::InTransaction(conn_.get(), who_, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    SRN_ASSIGN_OR_RETURN(
        Result r,
        pg::Query(conn_.get(), "SELECT nextval(pg_get_serial_sequence('srn_training_jobs', 'id'))",
                  Params(), who_, "number a new job"));
    const int64_t id = static_cast<int64_t>(ReadBigEndian(PQgetvalue(r.get(), 0, 0), 8));
    job->set_job_id(absl::StrCat("job-", id));
    job->set_state(v1::JOB_STATE_QUEUED);
    Params p;
    p.Text(Num(id));
    p.Text(Num(job->state()));
    p.Bytes(job->SerializeAsString());
    p.Bytes(dataset.SerializeAsString());
    return pg::Query(conn_.get(),
                     "INSERT INTO srn_training_jobs(id, state, job, dataset) "
                     "VALUES($1, $2, $3, $4)",
                     std::move(p), who_, absl::StrCat("record ", job->job_id()))
        .status();
  });
}

absl::StatusOr<v1::Job> PostgresJobStore::Get(const std::string& job_id, int64_t* version) {
  SRN_ASSIGN_OR_RETURN(const int64_t id, ParseJobNumber(job_id));
  MutexLock lock(&mu_);
  if (PQstatus(conn_.get()) != CONNECTION_OK) PQreset(conn_.get());
  Params p;
  p.Text(Num(id));
  SRN_ASSIGN_OR_RETURN(
      Result r, pg::Query(conn_.get(), "SELECT job, version FROM srn_training_jobs WHERE id = $1",
                          std::move(p), who_, absl::StrCat("read ", job_id)));
  if (PQntuples(r.get()) == 0) return absl::NotFoundError(absl::StrCat("no job '", job_id, "'"));
  if (version != nullptr) {
    *version = static_cast<int64_t>(ReadBigEndian(PQgetvalue(r.get(), 0, 1), 8));
  }
  return ParseJob(r.get(), 0, 0);
}

absl::StatusOr<v1::ListJobsResponse> PostgresJobStore::List(bool active_only) {
  MutexLock lock(&mu_);
  if (PQstatus(conn_.get()) != CONNECTION_OK) PQreset(conn_.get());
  Params p;
  p.Text(Num(v1::JOB_STATE_QUEUED));
  p.Text(Num(v1::JOB_STATE_RUNNING));
  p.Text(active_only ? "true" : "false");
  SRN_ASSIGN_OR_RETURN(Result r,
                       pg::Query(conn_.get(),
                                 "SELECT job FROM srn_training_jobs WHERE NOT $3::bool OR state "
                                 "IN ($1, $2) ORDER BY id DESC",
                                 std::move(p), who_, "list the jobs"));
  v1::ListJobsResponse response;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    SRN_ASSIGN_OR_RETURN(*response.add_jobs(), ParseJob(r.get(), i, 0));
  }
  return response;
}

absl::StatusOr<v1::Job> PostgresJobStore::Cancel(const std::string& job_id) {
  SRN_ASSIGN_OR_RETURN(const int64_t id, ParseJobNumber(job_id));
  MutexLock lock(&mu_);
  v1::Job job;
  SRN_RETURN_IF_ERROR(pg::InTransaction(
      conn_.get(), who_, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
        Params p;
        p.Text(Num(id));
        SRN_ASSIGN_OR_RETURN(
            Result r,
            pg::Query(conn_.get(), "SELECT job FROM srn_training_jobs WHERE id = $1 FOR UPDATE",
                      std::move(p), who_, absl::StrCat("read ", job_id)));
        if (PQntuples(r.get()) == 0)
          return absl::NotFoundError(absl::StrCat("no job '", job_id, "'"));
        SRN_ASSIGN_OR_RETURN(job, ParseJob(r.get(), 0, 0));
        switch (job.state()) {
          case v1::JOB_STATE_QUEUED:
            End(&job, v1::JOB_STATE_CANCELLED, "cancelled by request before it started");
            return Write(id, job, "");
          case v1::JOB_STATE_RUNNING:
            // Its trainer ends it, at its next heartbeat.
            return Write(id, job, ", cancel_requested = true");
          default:
            return absl::FailedPreconditionError(
                absl::StrCat(job_id, " already ended (", v1::JobState_Name(job.state()), ")"));
        }
      }));
  return job;
}

absl::StatusOr<std::optional<PostgresJobStore::Claimed>> PostgresJobStore::Claim(
    const std::string& trainer, double heartbeat_timeout_seconds) {
  MutexLock lock(&mu_);
  std::optional<Claimed> claimed;
  SRN_RETURN_IF_ERROR(pg::InTransaction(
      conn_.get(), who_, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
        Params p;
        p.Text(Num(v1::JOB_STATE_QUEUED));
        SRN_ASSIGN_OR_RETURN(
            Result r, pg::Query(conn_.get(),
                                "SELECT id, job, dataset FROM srn_training_jobs WHERE state = $1 "
                                "ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
                                std::move(p), who_, "claim a queued job"));
        if (PQntuples(r.get()) == 0) return absl::OkStatus();
        const int64_t id = static_cast<int64_t>(ReadBigEndian(PQgetvalue(r.get(), 0, 0), 8));
        Claimed c;
        SRN_ASSIGN_OR_RETURN(c.job, ParseJob(r.get(), 0, 1));
        if (!c.dataset.ParseFromArray(PQgetvalue(r.get(), 0, 2), PQgetlength(r.get(), 0, 2))) {
          return absl::DataLossError(absl::StrCat(who_, ": the dataset of job-", id,
                                                  " is not a readable srn.v1.DatasetRef"));
        }
        c.job.set_state(v1::JOB_STATE_RUNNING);
        c.job.set_started_unix_ms(NowUnixMs());
        Params w;
        w.Text(Num(id));
        w.Text(Num(c.job.state()));
        w.Bytes(c.job.SerializeAsString());
        w.Text(trainer);
        w.Text(absl::StrCat(heartbeat_timeout_seconds));
        SRN_RETURN_IF_ERROR(
            pg::Query(conn_.get(),
                      "UPDATE srn_training_jobs SET state = $2, job = $3, trainer = "
                      "$4, heartbeat_at = now(), heartbeat_timeout = $5, version = "
                      "version + 1 WHERE id = $1",
                      std::move(w), who_, absl::StrCat("claim job-", id))
                .status());
        claimed = std::move(c);
        return absl::OkStatus();
      }));
  return claimed;
}

absl::StatusOr<bool> PostgresJobStore::Record(const v1::Job& job, const std::string& trainer) {
  SRN_ASSIGN_OR_RETURN(const int64_t id, ParseJobNumber(job.job_id()));
  MutexLock lock(&mu_);
  if (PQstatus(conn_.get()) != CONNECTION_OK) PQreset(conn_.get());
  Params p;
  p.Text(Num(id));
  p.Text(Num(job.state()));
  p.Bytes(job.SerializeAsString());
  p.Text(trainer);
  p.Text(Num(v1::JOB_STATE_RUNNING));
  SRN_ASSIGN_OR_RETURN(
      Result r, pg::Query(conn_.get(),
                          "UPDATE srn_training_jobs SET state = $2, job = $3, heartbeat_at = "
                          "now(), version = version + 1 WHERE id = $1 AND trainer = $4 AND "
                          "state = $5 RETURNING cancel_requested",
                          std::move(p), who_, absl::StrCat("record ", job.job_id())));
  if (PQntuples(r.get()) == 0) {
    return absl::AbortedError(absl::StrCat(
        job.job_id(), " is no longer running on trainer '", trainer,
        "' (it missed its heartbeats and was ended as interrupted, or it was never claimed)"));
  }
  return *PQgetvalue(r.get(), 0, 0) != 0;
}

absl::StatusOr<int64_t> PostgresJobStore::Interrupt() {
  MutexLock lock(&mu_);
  int64_t ended = 0;
  SRN_RETURN_IF_ERROR(pg::InTransaction(
      conn_.get(), who_, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
        Params p;
        p.Text(Num(v1::JOB_STATE_RUNNING));
        SRN_ASSIGN_OR_RETURN(
            Result r,
            pg::Query(
                conn_.get(),
                "SELECT id, job, trainer, floor(extract(epoch FROM now() - heartbeat_at))::int8 "
                "FROM srn_training_jobs WHERE state = $1 AND heartbeat_at < now() - "
                "make_interval(secs => heartbeat_timeout) FOR UPDATE SKIP LOCKED",
                std::move(p), who_, "find jobs whose trainer stopped"));
        for (int i = 0; i < PQntuples(r.get()); ++i) {
          const int64_t id = static_cast<int64_t>(ReadBigEndian(PQgetvalue(r.get(), i, 0), 8));
          SRN_ASSIGN_OR_RETURN(v1::Job job, ParseJob(r.get(), i, 1));
          const int64_t silent = static_cast<int64_t>(ReadBigEndian(PQgetvalue(r.get(), i, 3), 8));
          End(&job, v1::JOB_STATE_INTERRUPTED,
              absl::StrCat("trainer '", PQgetvalue(r.get(), i, 2), "' sent no heartbeat for ",
                           silent,
                           " s (it stopped, or lost the database) while running the job; start it "
                           "again"));
          SRN_RETURN_IF_ERROR(Write(id, job, ""));
          ++ended;
        }
        return absl::OkStatus();
      }));
  return ended;
}

std::unique_ptr<JobStore> PostgresJobStore::RecorderFor(const std::string& trainer) {
  return std::make_unique<Recorder>(this, trainer);
}

}  // namespace srn
