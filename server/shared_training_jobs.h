#ifndef SRN_SERVER_SHARED_TRAINING_JOBS_H_
#define SRN_SERVER_SHARED_TRAINING_JOBS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/postgres_job_store.h"
#include "server/server_metrics.h"
#include "server/training_jobs.h"
#include "server/training_worker.h"

namespace srn {

// The training jobs of a server on a PostgreSQL store: it records the jobs it is asked for in
// the database, where trainers (srn-server --role=trainer) claim and run them, and answers for
// any job any server recorded. A server without --data_dir records a dataset reference
// unchecked (the trainer that claims it checks it against its own); with one it checks it first.
// Reading a job first ends the running jobs whose trainer stopped heartbeating, so that nobody
// sees a dead trainer's job as running. Watching polls the job's record (every 100 ms).
//
// Uploads are refused (FailedPrecondition): trainers run only what they can read for themselves.
// Thread-safe; `jobs` must outlive this.
class SharedTrainingJobs final : public TrainingJobs {
 public:
  SharedTrainingJobs(PostgresJobStore* jobs, const TrainingOptions& options, ServerMetrics* metrics)
      : jobs_(jobs), options_(options), metrics_(metrics) {}

  absl::StatusOr<v1::Job> StartJob(const v1::StartJobRequest& request) override;
  absl::StatusOr<v1::Job> StartUploadJob(const v1::TrainingSpec& spec,
                                         UploadedDataset upload) override;
  absl::StatusOr<v1::Job> GetJob(const std::string& job_id) override;
  absl::StatusOr<v1::ListJobsResponse> ListJobs(bool active_only) override;
  absl::StatusOr<v1::Job> CancelJob(const std::string& job_id) override;
  absl::StatusOr<v1::Job> WaitForChange(const std::string& job_id, int64_t* seen,
                                        absl::Duration timeout) override;

  // Ends the jobs of trainers that stopped heartbeating (PostgresJobStore::Interrupt), counts
  // them in `metrics` (may be null) and logs; errors go to stderr (whoever asked goes on).
  static void EndAbandoned(PostgresJobStore* jobs, ServerMetrics* metrics);

 private:
  PostgresJobStore* const jobs_;
  const TrainingOptions options_;
  ServerMetrics* const metrics_;
};

}  // namespace srn

#endif  // SRN_SERVER_SHARED_TRAINING_JOBS_H_
