#ifndef SRN_SERVER_TRAINING_WORKER_H_
#define SRN_SERVER_TRAINING_WORKER_H_

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/job_store.h"
#include "base/mutex.h"
#include "server/model_manager.h"
#include "server/series_input.h"
#include "server/server_metrics.h"
#include "server/training_data.h"
#include "server/training_jobs.h"
#include "server/training_queue.h"
#include "server/training_spec.h"
#include "srn/v1/training.pb.h"

namespace srn {

class PostgresJobStore;

struct TrainingOptions {
  std::string data_dir;       // datasets jobs may read; "" allows uploads only
  int threads = 1;            // compute threads of each running job (the job's own included)
  int max_jobs = 1;           // jobs running at once; more wait in the queue
  int nice = 10;              // niceness added to training threads (serving keeps priority)
  // Also put training threads in Linux's SCHED_IDLE class: they then run only on cycles no
  // normal thread wants (training may stall on a busy machine).
  bool sched_idle = false;
  int max_upload_series = 20000;
  RequestLimits limits;       // per uploaded series
  // A finished epoch whose mean training loss exceeds this (a balanced pair loss of 0.69 is
  // chance) fails the job as diverged; a non-finite loss always does.
  double diverged_loss = 10.0;

  // For trainers of a PostgreSQL store (srn-server --role=trainer): how often a trainer records
  // each job it runs (its heartbeat, also how soon it sees a cancellation), after how long
  // without a heartbeat a running job counts as its trainer's death, and how often an idle
  // trainer looks for queued jobs.
  double heartbeat_seconds = 5;
  double heartbeat_timeout_seconds = 60;
  double claim_poll_seconds = 1;
};

// Runs training jobs behind the server: checks a request (training_spec.h, training_data.h),
// queues it (training_queue.h: jobs are recorded in `store` at every change of state and after
// every epoch), and runs at most `max_jobs` at once, on threads of their own with raised
// niceness and `threads` compute threads each, so serving keeps its cores. Finished models go to
// the manager's registry, activated through it as the job's policy says (activation_policy.h). A
// job's failure (unreadable data, diverging loss, ...) ends that job as FAILED with the reason and
// affects nothing else.
//
// A trainer of a PostgreSQL store runs the jobs any server recorded there instead (StartClaiming):
// it claims a queued one whenever a runner is free, records each running job every
// heartbeat_seconds (learning so of a cancellation, or that its job was taken from it), and ends
// the jobs of trainers that stopped heartbeating.
//
// Thread-safe. The store and the manager (which must have a registry) must outlive the worker;
// `metrics` may be null.
class TrainingWorker final : public TrainingJobs {
 public:
  TrainingWorker(JobStore* store, ModelManager* manager, const TrainingOptions& options,
                 ServerMetrics* metrics);
  ~TrainingWorker() override;

  // Loads the recorded jobs, marks those that were queued or running as INTERRUPTED ("server
  // restarted while the job was running"), and starts the worker threads.
  absl::Status Start();
  // After Start, for a trainer: runs the jobs `jobs` holds, as `trainer` (the name its records
  // carry), instead of those submitted here. The worker's store must be
  // jobs->RecorderFor(trainer); `jobs` must outlive the worker.
  void StartClaiming(PostgresJobStore* jobs, const std::string& trainer)
      ABSL_LOCKS_EXCLUDED(claim_mu_);
  // Stops claiming and the worker threads; running jobs end as INTERRUPTED. Idempotent.
  void Stop() ABSL_LOCKS_EXCLUDED(claim_mu_);

  absl::StatusOr<v1::Job> StartJob(const v1::StartJobRequest& request) override;
  absl::StatusOr<v1::Job> StartUploadJob(const v1::TrainingSpec& spec,
                                         UploadedDataset upload) override;
  absl::StatusOr<v1::Job> GetJob(const std::string& job_id) override;
  absl::StatusOr<v1::ListJobsResponse> ListJobs(bool active_only) override;
  absl::StatusOr<v1::Job> CancelJob(const std::string& job_id) override;
  absl::StatusOr<v1::Job> WaitForChange(const std::string& job_id, int64_t* seen,
                                        absl::Duration timeout) override;

  static bool IsTerminal(v1::JobState state) { return TrainingQueue::IsTerminal(state); }

 private:
  void WorkerLoop();
  // Trains one job taken from the queue and ends it.
  void Run(TrainingQueue::Entry* entry);
  // A trainer's loop: claims, heartbeats, ends the jobs of trainers that stopped.
  void ClaimLoop(PostgresJobStore* jobs, const std::string& trainer) ABSL_LOCKS_EXCLUDED(claim_mu_);
  // Claims one queued job if any and hands it to a runner; whether it got one.
  bool ClaimOne(PostgresJobStore* jobs, const std::string& trainer);
  void Heartbeat(PostgresJobStore* jobs, const std::string& trainer);

  ModelManager* const manager_;
  const TrainingOptions options_;
  ServerMetrics* const metrics_;
  TrainingQueue queue_;
  // Started by Start; joined by the Stop call that stops the queue.
  std::vector<std::thread> threads_;
  std::thread claimer_;  // started by StartClaiming, joined by Stop
  Mutex claim_mu_;
  bool stop_claiming_ ABSL_GUARDED_BY(claim_mu_) = false;
};

}  // namespace srn

#endif  // SRN_SERVER_TRAINING_WORKER_H_
