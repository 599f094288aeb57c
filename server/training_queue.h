#ifndef SRN_SERVER_TRAINING_QUEUE_H_
#define SRN_SERVER_TRAINING_QUEUE_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/mutex.h"
#include "absl/time/time.h"
#include "server/job_store.h"
#include "server/server_metrics.h"
#include "server/training_data.h"
#include "srn/v1/training.pb.h"

namespace srn {

// The training jobs and their queue: every job the store records, the queued ones in submission
// order, and each job's state as it changes. Jobs are recorded in the store at every change of
// state and whenever a runner asks (Persist); the job gauges in `metrics` follow every change.
// Runners (TrainingWorker's threads) take jobs with Next() and report through Update, Persist and
// Finish; requests read jobs, wait for changes and cancel.
//
// Thread-safe. The store must outlive the queue; `metrics` may be null.
class TrainingQueue final {
 public:
  // Why a running job was asked to stop.
  enum class StopReason { kNone, kCancelled, kDiverged, kShutdown };

  // What the queue's lock guards of one job: reached only through TrainingQueue::StateOf, which
  // requires that lock (so clang checks every access), or through Update's callback.
  struct JobState {
    v1::Job job;
    int64_t changes = 0;
    StopReason stop = StopReason::kNone;
    std::string stop_message;  // the job's reason when it stops for `stop`
  };

  // One job: its guarded state, and what belongs to its runner once Next() returned it.
  class Entry final {
   public:
    std::atomic<bool> cancel{false};  // set with the stop reason: the trainer stops at its next
                                      // mini-batch
    JobData data;
    std::chrono::steady_clock::time_point started;

   private:
    friend class TrainingQueue;
    JobState state_;
  };

  TrainingQueue(JobStore* store, ServerMetrics* metrics) : store_(store), metrics_(metrics) {}

  static bool IsTerminal(v1::JobState state);

  // Loads the recorded jobs, marks those that were queued or running as INTERRUPTED ("server
  // restarted while the job was running") and starts accepting jobs. FailedPrecondition when
  // started twice.
  absl::Status Start() ABSL_LOCKS_EXCLUDED(mu_, persist_mu_);
  // Stops accepting jobs, asks running jobs to stop (kShutdown: they end INTERRUPTED) and wakes
  // the runners waiting in Next(). Returns false when it was stopped already.
  bool Stop() ABSL_LOCKS_EXCLUDED(mu_);

  // Records `job` (given its spec and dataset) as QUEUED with its data and returns it with its id.
  // Unavailable unless started and not stopped.
  absl::StatusOr<v1::Job> Enqueue(v1::Job job, JobData data) ABSL_LOCKS_EXCLUDED(mu_, persist_mu_);
  // Queues a job another process recorded (and this one claimed), under its own id. Unavailable
  // unless started and not stopped.
  absl::Status Adopt(v1::Job job, JobData data) ABSL_LOCKS_EXCLUDED(mu_);
  // Jobs queued or running here.
  int Unfinished() const ABSL_LOCKS_EXCLUDED(mu_);
  // The running jobs' entries.
  std::vector<std::shared_ptr<Entry>> Running() const ABSL_LOCKS_EXCLUDED(mu_);

  absl::StatusOr<v1::Job> Get(const std::string& job_id) const ABSL_LOCKS_EXCLUDED(mu_);
  // Newest first; with `active_only`, queued and running jobs only.
  v1::ListJobsResponse List(bool active_only) const ABSL_LOCKS_EXCLUDED(mu_);
  // A queued job ends CANCELLED at once; a running one is asked to stop (kCancelled) and its
  // runner ends it. NotFound for an unknown job, FailedPrecondition for one that already ended.
  absl::StatusOr<v1::Job> Cancel(const std::string& job_id) ABSL_LOCKS_EXCLUDED(mu_, persist_mu_);
  // The job once it changed after change number `*seen` (or after `timeout`, unchanged); sets
  // `*seen` to the number of the returned state.
  absl::StatusOr<v1::Job> WaitForChange(const std::string& job_id, int64_t* seen,
                                        absl::Duration timeout) const ABSL_LOCKS_EXCLUDED(mu_);

  // For runners. Waits for the next queued job, marks it RUNNING (recorded) and returns it;
  // null once the queue is stopped.
  std::shared_ptr<Entry> Next() ABSL_LOCKS_EXCLUDED(mu_, persist_mu_);
  // Applies `change` to the entry's job under the queue's lock and updates the gauges. It wakes
  // WaitForChange unless `quiet` (watchers then see it with the next change). Not recorded until
  // Persist or Finish.
  void Update(Entry* entry, const std::function<void(v1::Job*)>& change, bool quiet = false)
      ABSL_LOCKS_EXCLUDED(mu_);
  // A copy of the entry's job, under the queue's lock.
  v1::Job Snapshot(const Entry* entry) const ABSL_LOCKS_EXCLUDED(mu_);
  // Asks a running job to stop, for `reason` (the first reason asked for stays) with
  // `message` as its reason when it ends.
  void RequestStop(Entry* entry, StopReason reason, const std::string& message)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Records the entry's job in the store now.
  void Persist(Entry* entry) ABSL_LOCKS_EXCLUDED(mu_, persist_mu_);
  // Ends a job: state, reason, finish time, metrics, store.
  void Finish(Entry* entry, v1::JobState state, const std::string& reason)
      ABSL_LOCKS_EXCLUDED(mu_, persist_mu_);
  // Ends a job whose training stopped early, by why it was asked to stop: diverged (FAILED),
  // shutdown (INTERRUPTED, with the stop's message if it gave one) or cancelled.
  void FinishStopped(Entry* entry) ABSL_LOCKS_EXCLUDED(mu_, persist_mu_);

 private:
  JobState& StateOf(Entry* entry) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return entry->state_; }
  const JobState& StateOf(const Entry* entry) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return entry->state_;
  }
  JobState& StateOf(const std::shared_ptr<Entry>& entry) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return entry->state_;
  }
  void Changed(Entry* entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UpdateMetrics() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::shared_ptr<Entry> Find(const std::string& job_id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  JobStore* const store_;
  ServerMetrics* const metrics_;

  Mutex persist_mu_ ABSL_ACQUIRED_BEFORE(mu_);  // keeps store writes of a job in order
  mutable Mutex mu_;
  std::map<int64_t, std::shared_ptr<Entry>> jobs_ ABSL_GUARDED_BY(mu_);  // by job number
  std::deque<std::shared_ptr<Entry>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace srn

#endif  // SRN_SERVER_TRAINING_QUEUE_H_
