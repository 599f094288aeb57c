#ifndef SRN_SERVER_TRAINING_WORKER_H_
#define SRN_SERVER_TRAINING_WORKER_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "model/data/dataset.h"
#include "model/data/preprocess.h"
#include "model/train/trainer.h"
#include "server/job_store.h"
#include "server/model_manager.h"
#include "server/series_input.h"
#include "server/server_metrics.h"
#include "srn/v1/training.pb.h"

namespace srn {

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
};

// Fills the documented defaults of a spec (see training.proto) and checks every value;
// InvalidArgument names the first bad field.
absl::StatusOr<v1::TrainingSpec> CompleteTrainingSpec(const v1::TrainingSpec& spec);

// Resolves a dataset path against the data directory: relative paths are taken from it, and the
// result (after resolving symbolic links) must lie inside it. FailedPrecondition without a data
// directory, InvalidArgument for an empty path, PermissionDenied for a path that leaves the
// directory (by ".." or through a link), NotFound for one that does not exist.
absl::StatusOr<std::string> ResolveDataPath(const std::string& data_dir, const std::string& path);

// Collects uploaded labelled series into a dataset, checking each as it arrives (all frames
// with one feature count, or all pen samples). Not thread-safe.
class UploadedDataset final {
 public:
  explicit UploadedDataset(const TrainingOptions& options) : options_(options) {}
  absl::Status Add(const v1::LabelledSeries& series);
  int size() const { return static_cast<int>(data_.examples.size()); }
  FeatureKind kind() const { return kind_; }
  Dataset Take() { return std::move(data_); }

 private:
  const TrainingOptions options_;
  Dataset data_{"upload", {}, {}};
  std::map<std::string, int> labels_;
  FeatureKind kind_ = FeatureKind::kFrames;
};

// Runs training jobs behind the server. Jobs are recorded in `store` at every change of state
// and after every epoch; finished models go to `registry`. At most `max_jobs` run at once, on
// threads of their own with raised niceness and `threads` compute threads each, so serving keeps
// its cores. A job's failure (unreadable data, diverging loss, ...) ends that job as FAILED with
// the reason and affects nothing else.
//
// Thread-safe. The store and the manager (which must have a registry) must outlive the worker;
// `metrics` may be null.
class TrainingWorker {
 public:
  TrainingWorker(JobStore* store, ModelManager* manager, const TrainingOptions& options,
                 ServerMetrics* metrics);
  ~TrainingWorker();

  // Loads the recorded jobs, marks those that were queued or running as INTERRUPTED ("server
  // restarted while the job was running"), and starts the worker threads.
  absl::Status Start() ABSL_LOCKS_EXCLUDED(mu_);
  // Stops the worker threads; running jobs end as INTERRUPTED. Idempotent.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  absl::StatusOr<v1::Job> StartJob(const v1::StartJobRequest& request) ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<v1::Job> StartUploadJob(const v1::TrainingSpec& spec, UploadedDataset upload)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<v1::Job> GetJob(const std::string& job_id) const ABSL_LOCKS_EXCLUDED(mu_);
  v1::ListJobsResponse ListJobs(bool active_only) const ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<v1::Job> CancelJob(const std::string& job_id) ABSL_LOCKS_EXCLUDED(mu_);

  // The job once it changed after change number `*seen` (or after `timeout`, unchanged); sets
  // `*seen` to the number of the returned state. For watching a job.
  absl::StatusOr<v1::Job> WaitForChange(const std::string& job_id, int64_t* seen,
                                        absl::Duration timeout) const ABSL_LOCKS_EXCLUDED(mu_);

  static bool IsTerminal(v1::JobState state);

 private:
  enum class StopReason { kNone, kCancelled, kDiverged, kShutdown };
  struct Entry {
    v1::Job job;
    int64_t changes = 0;
    std::atomic<bool> cancel{false};
    StopReason stop = StopReason::kNone;
    std::string diverged;  // the reason, when stop == kDiverged
    v1::DatasetRef ref;    // server-side datasets
    std::string path;      // ... and their resolved path
    std::optional<Dataset> upload;
    FeatureKind upload_kind = FeatureKind::kFrames;
    std::chrono::steady_clock::time_point started;
  };

  absl::StatusOr<v1::Job> Enqueue(std::shared_ptr<Entry> entry) ABSL_LOCKS_EXCLUDED(mu_);
  void WorkerLoop() ABSL_LOCKS_EXCLUDED(mu_);
  void Run(Entry* entry) ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<Dataset> LoadData(Entry* entry, FeatureKind* kind) ABSL_LOCKS_EXCLUDED(mu_);
  // Ends a job: state, reason, metrics, store.
  void Finish(Entry* entry, v1::JobState state, const std::string& reason) ABSL_LOCKS_EXCLUDED(mu_);
  void Persist(Entry* entry) ABSL_LOCKS_EXCLUDED(mu_, persist_mu_);
  void Changed(Entry* entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UpdateMetrics() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::shared_ptr<Entry> Find(const std::string& job_id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  JobStore* const store_;
  ModelManager* const manager_;
  const TrainingOptions options_;
  ServerMetrics* const metrics_;

  mutable absl::Mutex mu_;
  std::map<int64_t, std::shared_ptr<Entry>> jobs_ ABSL_GUARDED_BY(mu_);  // by job number
  std::deque<std::shared_ptr<Entry>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
  absl::Mutex persist_mu_ ABSL_ACQUIRED_BEFORE(mu_);  // keeps store writes of a job in order
};

}  // namespace srn

#endif  // SRN_SERVER_TRAINING_WORKER_H_
