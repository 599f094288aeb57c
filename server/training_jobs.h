#ifndef SRN_SERVER_TRAINING_JOBS_H_
#define SRN_SERVER_TRAINING_JOBS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/training_data.h"
#include "srn/v1/training.pb.h"

namespace srn {

// What the training service asks of training jobs (proto/srn/v1/training.proto): start one, read
// them, cancel one, watch one change. Implemented by TrainingWorker (the jobs of a server on a
// SQLite store, run in its own process) and SharedTrainingJobs (the jobs every server on a
// PostgreSQL store records, run by trainers of their own). Thread-safe.
class TrainingJobs {
 public:
  virtual ~TrainingJobs() = default;

  virtual absl::StatusOr<v1::Job> StartJob(const v1::StartJobRequest& request) = 0;
  virtual absl::StatusOr<v1::Job> StartUploadJob(const v1::TrainingSpec& spec,
                                                 UploadedDataset upload) = 0;
  virtual absl::StatusOr<v1::Job> GetJob(const std::string& job_id) = 0;
  virtual absl::StatusOr<v1::ListJobsResponse> ListJobs(bool active_only) = 0;
  virtual absl::StatusOr<v1::Job> CancelJob(const std::string& job_id) = 0;
  // The job once it changed after change number `*seen` (or after `timeout`, unchanged); sets
  // `*seen` to the number of the returned state. For watching a job.
  virtual absl::StatusOr<v1::Job> WaitForChange(const std::string& job_id, int64_t* seen,
                                                absl::Duration timeout) = 0;
};

}  // namespace srn

#endif  // SRN_SERVER_TRAINING_JOBS_H_
