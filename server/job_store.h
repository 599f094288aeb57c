#ifndef SRN_SERVER_JOB_STORE_H_
#define SRN_SERVER_JOB_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "srn/v1/training.pb.h"

namespace srn {

// The durable record of training jobs: table `training_jobs(id INTEGER PRIMARY KEY, state
// INTEGER, job BLOB)` in the server's SQLite file (next to the subject store's tables; the file
// is already in WAL mode, and this connection also commits with synchronous=FULL), or a private
// in-memory database for ":memory:". `job` is a serialized srn.v1.Job. Uploaded series are not
// stored: a job is only ever resumed as "interrupted", never re-run.
//
// Errors: Unavailable / DataLoss / Internal with SQLite's message and the path (as the subject
// store); DataLoss for a row that does not parse. Thread-safe (calls are serialized inside).
// The number n of a job id "job-<n>"; NotFound (naming the id and the form ids take) otherwise.
absl::StatusOr<int64_t> ParseJobNumber(const std::string& job_id);

class JobStore {
 public:
  // Opens the jobs table in `path` (creating it); open the subject store on the same file first,
  // so that a new file gets that store's header.
  static absl::StatusOr<std::unique_ptr<JobStore>> Open(const std::string& path);
  virtual ~JobStore() = default;

  // Records a new job: assigns job->job_id ("job-<n>", n increasing from 1) and stores it.
  virtual absl::Status Create(v1::Job* job) = 0;
  // Replaces the stored job of the same id; NotFound when there is none.
  virtual absl::Status Update(const v1::Job& job) = 0;
  // Every stored job, oldest first.
  virtual absl::StatusOr<std::vector<v1::Job>> LoadAll() = 0;
};

}  // namespace srn

#endif  // SRN_SERVER_JOB_STORE_H_
