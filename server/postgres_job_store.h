#ifndef SRN_SERVER_POSTGRES_JOB_STORE_H_
#define SRN_SERVER_POSTGRES_JOB_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/mutex.h"
#include "server/job_store.h"
#include "server/postgres_connection.h"
#include "srn/v1/training.pb.h"

namespace srn {

// The training jobs of every server and trainer on one PostgreSQL store (issue 19): servers
// record the jobs they are asked for, trainers (srn-server --role=trainer) claim queued ones with
// SELECT ... FOR UPDATE SKIP LOCKED, so that each job runs once, and record it while it runs. A
// running job's record carries its trainer and the time of its last heartbeat; a job whose
// trainer stopped sending them (killed, or cut off from the database) is ended as INTERRUPTED
// with that reason by whoever looks next (Interrupt), never left running.
//
// Schema (created if missing, next to the subject store's tables):
//   srn_training_jobs(id BIGSERIAL PRIMARY KEY, state INT4, job BYTEA, dataset BYTEA,
//                     trainer TEXT, heartbeat_at TIMESTAMPTZ, heartbeat_timeout FLOAT8,
//                     cancel_requested BOOL, version INT8)
// `job` is a serialized srn.v1.Job, `dataset` the srn.v1.DatasetRef it was asked for (the
// trainer resolves it against its own --data_dir), `heartbeat_timeout` the silence (seconds)
// after which the claiming trainer counts as gone, `version` counts the row's changes.
//
// Errors: Unavailable while the database cannot be reached (each call reconnects first), the
// others as pg::CodeOf, all naming the database without its password. Thread-safe: calls are
// serialized on one connection.
class PostgresJobStore final {
 public:
  static absl::StatusOr<std::unique_ptr<PostgresJobStore>> Open(const std::string& uri);

  // A queued job, as a trainer claimed it.
  struct Claimed {
    v1::Job job;  // RUNNING, its start time set
    v1::DatasetRef dataset;
  };

  // Records `job` as QUEUED and assigns its id ("job-<n>").
  absl::Status Create(v1::Job* job, const v1::DatasetRef& dataset) ABSL_LOCKS_EXCLUDED(mu_);
  // The job and the number of changes its record has seen. NotFound for an unknown id.
  absl::StatusOr<v1::Job> Get(const std::string& job_id, int64_t* version = nullptr)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Newest first; with `active_only`, queued and running jobs only.
  absl::StatusOr<v1::ListJobsResponse> List(bool active_only) ABSL_LOCKS_EXCLUDED(mu_);
  // A queued job ends CANCELLED at once; a running one is marked for cancellation, which its
  // trainer sees at its next heartbeat. NotFound for an unknown job, FailedPrecondition for one
  // that already ended.
  absl::StatusOr<v1::Job> Cancel(const std::string& job_id) ABSL_LOCKS_EXCLUDED(mu_);

  // For trainers. The oldest queued job no other trainer is claiming, now RUNNING on `trainer`,
  // which promises a heartbeat (Record) at least every `heartbeat_timeout_seconds`; nullopt when
  // none is queued.
  absl::StatusOr<std::optional<Claimed>> Claim(const std::string& trainer,
                                               double heartbeat_timeout_seconds)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Records a job `trainer` holds, and its heartbeat. Returns whether someone asked to cancel
  // it. Aborted when the job is no longer the trainer's to record (it was ended as interrupted
  // after missed heartbeats): the trainer should stop it.
  absl::StatusOr<bool> Record(const v1::Job& job, const std::string& trainer)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Ends every running job whose trainer sent no heartbeat for longer than it promised as
  // INTERRUPTED, with the reason. Returns how many.
  absl::StatusOr<int64_t> Interrupt() ABSL_LOCKS_EXCLUDED(mu_);

  // The JobStore a trainer's queue records through (Update is Record for `trainer`; it has no
  // jobs to load, and creates none). Must not outlive this store.
  std::unique_ptr<JobStore> RecorderFor(const std::string& trainer);

  // The database, without the URI's password.
  const std::string& who() const { return who_; }

 private:
  PostgresJobStore(std::string who, pg::Conn conn) : who_(std::move(who)), conn_(std::move(conn)) {}

  absl::StatusOr<v1::Job> ParseJob(const PGresult* r, int row, int column) const;
  absl::Status Write(int64_t id, const v1::Job& job, const char* more_sql)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string who_;
  Mutex mu_;
  pg::Conn conn_ ABSL_GUARDED_BY(mu_);
};

}  // namespace srn

#endif  // SRN_SERVER_POSTGRES_JOB_STORE_H_
