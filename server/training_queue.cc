#include "server/training_queue.h"

#include <iostream>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "base/status_macros.h"

namespace srn {
namespace {

const char* StateName(v1::JobState state) {
  switch (state) {
    case v1::JOB_STATE_QUEUED: return "queued";
    case v1::JOB_STATE_RUNNING: return "running";
    case v1::JOB_STATE_SUCCEEDED: return "succeeded";
    case v1::JOB_STATE_FAILED: return "failed";
    case v1::JOB_STATE_CANCELLED: return "cancelled";
    case v1::JOB_STATE_INTERRUPTED: return "interrupted";
    default: return "unspecified";
  }
}

int64_t JobNumber(const std::string& job_id) { return ParseJobNumber(job_id).value_or(-1); }

}  // namespace

bool TrainingQueue::IsTerminal(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
         state == v1::JOB_STATE_CANCELLED || state == v1::JOB_STATE_INTERRUPTED;
}

absl::Status TrainingQueue::Start() {
  SRN_ASSIGN_OR_RETURN(std::vector<v1::Job> jobs, store_->LoadAll());
  int64_t interrupted = 0;
  std::vector<std::shared_ptr<Entry>> changed;
  {
    MutexLock lock(&mu_);
    if (started_) return absl::FailedPreconditionError("the training worker is already started");
    started_ = true;
    for (v1::Job& job : jobs) {
      auto entry = std::make_shared<Entry>();
      if (!IsTerminal(job.state())) {
        job.set_state(v1::JOB_STATE_INTERRUPTED);
        job.set_reason("server restarted while the job was running");
        job.set_finished_unix_ms(NowUnixMs());
        changed.push_back(entry);
        ++interrupted;
      }
      StateOf(entry).job = std::move(job);
      jobs_[JobNumber(StateOf(entry).job.job_id())] = entry;
    }
    UpdateMetrics();
  }
  for (const auto& entry : changed) Persist(entry.get());
  if (metrics_ != nullptr) metrics_->JobFinished("interrupted", interrupted);
  return absl::OkStatus();
}

bool TrainingQueue::Stop() {
  MutexLock lock(&mu_);
  if (stopping_) return false;
  stopping_ = true;
  for (auto& [n, entry] : jobs_) {
    if (StateOf(entry).job.state() == v1::JOB_STATE_RUNNING) {
      StateOf(entry).stop = StopReason::kShutdown;
      entry->cancel.store(true);
    }
  }
  return true;
}

std::shared_ptr<TrainingQueue::Entry> TrainingQueue::Find(const std::string& job_id) const {
  auto it = jobs_.find(JobNumber(job_id));
  return it == jobs_.end() ? nullptr : it->second;
}

void TrainingQueue::Changed(Entry* entry) { ++StateOf(entry).changes; }

void TrainingQueue::UpdateMetrics() {
  if (metrics_ == nullptr) return;
  std::map<std::string, int64_t> counts;
  double progress = 0;
  int running = 0;
  for (const auto& [n, entry] : jobs_) {
    ++counts[StateName(StateOf(entry).job.state())];
    if (StateOf(entry).job.state() == v1::JOB_STATE_RUNNING) {
      progress += StateOf(entry).job.progress().fraction();
      ++running;
    }
  }
  for (const std::string& state : ServerMetrics::JobStates())
    metrics_->SetJobCount(state, counts[state]);
  metrics_->SetTrainingProgress(running > 0 ? progress / running : 0.0);
}

void TrainingQueue::Persist(Entry* entry) {
  MutexLock order(&persist_mu_);
  v1::Job copy;
  {
    MutexLock lock(&mu_);
    copy = StateOf(entry).job;
  }
  if (absl::Status s = store_->Update(copy); !s.ok()) {
    std::cerr << "srn-server: cannot record " << copy.job_id() << ": " << s.message() << "\n";
  }
}

absl::StatusOr<v1::Job> TrainingQueue::Enqueue(v1::Job job, JobData data) {
  auto entry = std::make_shared<Entry>();
  entry->data = std::move(data);
  job.set_state(v1::JOB_STATE_QUEUED);
  job.set_created_unix_ms(NowUnixMs());
  job.mutable_progress()->set_max_epochs(job.spec().max_epochs());
  MutexLock order(&persist_mu_);
  {
    MutexLock lock(&mu_);
    if (stopping_ || !started_) {
      return absl::UnavailableError(
          "the training worker is not running (the server is shutting down)");
    }
  }
  SRN_RETURN_IF_ERROR(store_->Create(&job));
  MutexLock lock(&mu_);
  StateOf(entry.get()).job = std::move(job);
  const v1::Job& queued = StateOf(entry.get()).job;
  jobs_[JobNumber(queued.job_id())] = entry;
  queue_.push_back(entry);
  UpdateMetrics();
  return queued;
}

absl::Status TrainingQueue::Adopt(v1::Job job, JobData data) {
  auto entry = std::make_shared<Entry>();
  entry->data = std::move(data);
  MutexLock lock(&mu_);
  if (stopping_ || !started_) {
    return absl::UnavailableError("the training worker is not running (it is shutting down)");
  }
  StateOf(entry.get()).job = std::move(job);
  jobs_[JobNumber(StateOf(entry.get()).job.job_id())] = entry;
  queue_.push_back(entry);
  UpdateMetrics();
  return absl::OkStatus();
}

int TrainingQueue::Unfinished() const {
  MutexLock lock(&mu_);
  int unfinished = 0;
  for (const auto& [n, entry] : jobs_) unfinished += !IsTerminal(StateOf(entry).job.state());
  return unfinished;
}

std::vector<std::shared_ptr<TrainingQueue::Entry>> TrainingQueue::Running() const {
  MutexLock lock(&mu_);
  std::vector<std::shared_ptr<Entry>> running;
  for (const auto& [n, entry] : jobs_) {
    if (StateOf(entry).job.state() == v1::JOB_STATE_RUNNING) running.push_back(entry);
  }
  return running;
}

absl::StatusOr<v1::Job> TrainingQueue::Get(const std::string& job_id) const {
  MutexLock lock(&mu_);
  std::shared_ptr<Entry> entry = Find(job_id);
  if (entry == nullptr) return absl::NotFoundError(absl::StrCat("no job '", job_id, "'"));
  return StateOf(entry).job;
}

v1::ListJobsResponse TrainingQueue::List(bool active_only) const {
  MutexLock lock(&mu_);
  v1::ListJobsResponse response;
  for (auto it = jobs_.rbegin(); it != jobs_.rend(); ++it) {
    if (active_only && IsTerminal(StateOf(it->second.get()).job.state())) continue;
    *response.add_jobs() = StateOf(it->second.get()).job;
  }
  return response;
}

absl::StatusOr<v1::Job> TrainingQueue::Cancel(const std::string& job_id) {
  std::shared_ptr<Entry> entry;
  {
    MutexLock lock(&mu_);
    entry = Find(job_id);
    if (entry == nullptr) return absl::NotFoundError(absl::StrCat("no job '", job_id, "'"));
    const v1::JobState state = StateOf(entry).job.state();
    if (IsTerminal(state)) {
      return absl::FailedPreconditionError(
          absl::StrCat(job_id, " already ended (", StateName(state), ")"));
    }
    if (state == v1::JOB_STATE_RUNNING) {
      // The runner ends it at the next mini-batch.
      if (StateOf(entry).stop == StopReason::kNone) StateOf(entry).stop = StopReason::kCancelled;
      entry->cancel.store(true);
      return StateOf(entry).job;
    }
    for (auto it = queue_.begin(); it != queue_.end(); ++it) {
      if (*it == entry) {
        queue_.erase(it);
        break;
      }
    }
  }
  Finish(entry.get(), v1::JOB_STATE_CANCELLED, "cancelled by request before it started");
  MutexLock lock(&mu_);
  return StateOf(entry).job;
}

absl::StatusOr<v1::Job> TrainingQueue::WaitForChange(const std::string& job_id, int64_t* seen,
                                                     absl::Duration timeout) const {
  MutexLock lock(&mu_);
  std::shared_ptr<Entry> entry = Find(job_id);
  if (entry == nullptr) return absl::NotFoundError(absl::StrCat("no job '", job_id, "'"));
  const int64_t after = *seen;
  const Entry* e = entry.get();
  auto changed = [this, e, after]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return StateOf(e).changes != after;
  };
  mu_.AwaitWithTimeout(changed, timeout);
  *seen = StateOf(entry).changes;
  return StateOf(entry).job;
}

std::shared_ptr<TrainingQueue::Entry> TrainingQueue::Next() {
  std::shared_ptr<Entry> entry;
  {
    MutexLock lock(&mu_);
    auto ready = [this]()
                     ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !queue_.empty(); };
    mu_.Await(ready);
    if (stopping_) return nullptr;
    entry = queue_.front();
    queue_.pop_front();
    StateOf(entry).job.set_state(v1::JOB_STATE_RUNNING);
    StateOf(entry).job.set_started_unix_ms(NowUnixMs());
    entry->started = std::chrono::steady_clock::now();
    Changed(entry.get());
    UpdateMetrics();
  }
  Persist(entry.get());
  return entry;
}

void TrainingQueue::Update(Entry* entry, const std::function<void(v1::Job*)>& change,
                          bool quiet) {
  MutexLock lock(&mu_);
  change(&StateOf(entry).job);
  if (!quiet) Changed(entry);
  UpdateMetrics();
}

v1::Job TrainingQueue::Snapshot(const Entry* entry) const {
  MutexLock lock(&mu_);
  return StateOf(entry).job;
}

void TrainingQueue::RequestStop(Entry* entry, StopReason reason, const std::string& message) {
  MutexLock lock(&mu_);
  // A cancellation never replaces an earlier reason; divergence and shutdown do.
  if (reason != StopReason::kCancelled || StateOf(entry).stop == StopReason::kNone) {
    StateOf(entry).stop = reason;
    StateOf(entry).stop_message = message;
  }
  entry->cancel.store(true);
}

void TrainingQueue::Finish(Entry* entry, v1::JobState state, const std::string& reason) {
  {
    MutexLock lock(&mu_);
    StateOf(entry).job.set_state(state);
    StateOf(entry).job.set_reason(reason);
    StateOf(entry).job.set_finished_unix_ms(NowUnixMs());
    Changed(entry);
    UpdateMetrics();
  }
  if (metrics_ != nullptr) metrics_->JobFinished(StateName(state));
  Persist(entry);
}

void TrainingQueue::FinishStopped(Entry* entry) {
  StopReason stop;
  std::string message;
  {
    MutexLock lock(&mu_);
    stop = StateOf(entry).stop;
    message = StateOf(entry).stop_message;
  }
  switch (stop) {
    case StopReason::kDiverged:
      Finish(entry, v1::JOB_STATE_FAILED, message);
      break;
    case StopReason::kShutdown:
      Finish(entry, v1::JOB_STATE_INTERRUPTED,
             message.empty() ? "the server shut down while the job was running" : message);
      break;
    default:
      Finish(entry, v1::JOB_STATE_CANCELLED, "cancelled by request while running");
      break;
  }
}

}  // namespace srn
