#include "server/training_worker.h"

#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <iostream>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "base/clock.h"
#include "base/status_macros.h"
#include "model/eval/protocols.h"
#include "model/train/train_config.h"
#include "model/train/trainer.h"
#include "model/weights/weights_file.h"
#include "server/activation_policy.h"
#include "server/postgres_job_store.h"
#include "server/shared_training_jobs.h"

namespace srn {
namespace {

// Lowers the calling thread's priority: on Linux the nice value is per thread, and threads it
// starts (the trainer's shards) inherit it.
void LowerThreadPriority(int nice, bool sched_idle) {
  const pid_t tid = static_cast<pid_t>(::syscall(SYS_gettid));
  if (nice > 0) {
    const int current = ::getpriority(PRIO_PROCESS, tid);
    if (::setpriority(PRIO_PROCESS, tid, std::min(19, current + nice)) != 0) {
      std::cerr << "srn-server: cannot lower the training thread's priority: "
                << std::strerror(errno) << "\n";
    }
  }
  if (sched_idle) {
    sched_param param{};
    if (::sched_setscheduler(tid, SCHED_IDLE, &param) != 0) {
      std::cerr << "srn-server: cannot put the training thread in SCHED_IDLE: "
                << std::strerror(errno) << "\n";
    }
  }
}

}  // namespace

TrainingWorker::TrainingWorker(JobStore* store, ModelManager* manager,
                               const TrainingOptions& options, ServerMetrics* metrics)
    : manager_(manager), options_(options), metrics_(metrics), queue_(store, metrics) {}

TrainingWorker::~TrainingWorker() { Stop(); }

absl::Status TrainingWorker::Start() {
  SRN_RETURN_IF_ERROR(queue_.Start());
  for (int i = 0; i < std::max(1, options_.max_jobs); ++i) {
    threads_.emplace_back([this] { WorkerLoop(); });
  }
  return absl::OkStatus();
}

void TrainingWorker::StartClaiming(PostgresJobStore* jobs, const std::string& trainer) {
  MutexLock lock(&claim_mu_);
  if (claimer_.joinable() || stop_claiming_) return;
  claimer_ = std::thread([this, jobs, trainer] { ClaimLoop(jobs, trainer); });
}

void TrainingWorker::Stop() {
  {
    MutexLock lock(&claim_mu_);
    stop_claiming_ = true;
  }
  if (claimer_.joinable()) claimer_.join();
  if (!queue_.Stop()) return;
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  // Claimed jobs no runner took up.
  for (const std::shared_ptr<TrainingQueue::Entry>& entry : queue_.Running()) {
    queue_.Finish(entry.get(), v1::JOB_STATE_INTERRUPTED,
                  "the trainer shut down before the job started; start it again");
  }
}

void TrainingWorker::ClaimLoop(PostgresJobStore* jobs, const std::string& trainer) {
  const absl::Duration heartbeat = absl::Seconds(options_.heartbeat_seconds);
  absl::Time next_heartbeat = absl::Now();
  for (;;) {
    if (absl::Now() >= next_heartbeat) {
      Heartbeat(jobs, trainer);
      next_heartbeat = absl::Now() + heartbeat;
    }
    // A free runner takes the next queued job at once.
    if (queue_.Unfinished() < std::max(1, options_.max_jobs) && ClaimOne(jobs, trainer)) continue;
    MutexLock lock(&claim_mu_);
    const absl::Duration wait =
        std::min(absl::Seconds(options_.claim_poll_seconds), next_heartbeat - absl::Now());
    claim_mu_.AwaitWithTimeout(
        [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(claim_mu_) { return stop_claiming_; }, wait);
    if (stop_claiming_) return;
  }
}

bool TrainingWorker::ClaimOne(PostgresJobStore* jobs, const std::string& trainer) {
  absl::StatusOr<std::optional<PostgresJobStore::Claimed>> claimed =
      jobs->Claim(trainer, options_.heartbeat_timeout_seconds);
  if (!claimed.ok()) {
    std::cerr << "srn-server: cannot claim a training job: " << claimed.status().message()
              << "\n";
    return false;
  }
  if (!claimed->has_value()) return false;
  if (metrics_ != nullptr) metrics_->JobClaimed();
  v1::Job& job = (*claimed)->job;
  absl::StatusOr<DataDirDataset> dataset =
      ResolveDatasetRef(options_.data_dir, (*claimed)->dataset);
  absl::Status adopted = dataset.status();
  if (adopted.ok()) {
    job.set_dataset(dataset->description);
    JobData data;
    data.dataset = *std::move(dataset);
    adopted = queue_.Adopt(job, std::move(data));
  }
  if (!adopted.ok()) {
    job.set_state(v1::JOB_STATE_FAILED);
    job.set_reason(absl::StrCat("trainer '", trainer, "' cannot run it: ", adopted.message()));
    job.set_finished_unix_ms(NowUnixMs());
    if (absl::Status s = jobs->Record(job, trainer).status(); !s.ok()) {
      std::cerr << "srn-server: cannot record " << job.job_id() << ": " << s.message() << "\n";
    }
  }
  return true;
}

void TrainingWorker::Heartbeat(PostgresJobStore* jobs, const std::string& trainer) {
  for (const std::shared_ptr<TrainingQueue::Entry>& entry : queue_.Running()) {
    const v1::Job job = queue_.Snapshot(entry.get());
    absl::StatusOr<bool> cancel = jobs->Record(job, trainer);
    if (absl::IsAborted(cancel.status())) {
      queue_.RequestStop(entry.get(), TrainingQueue::StopReason::kShutdown,
                         std::string(cancel.status().message()));
    } else if (cancel.ok() && *cancel) {
      queue_.RequestStop(entry.get(), TrainingQueue::StopReason::kCancelled, "");
    } else if (!cancel.ok()) {
      std::cerr << "srn-server: cannot record " << job.job_id() << ": "
                << cancel.status().message() << "\n";
    }
  }
  SharedTrainingJobs::EndAbandoned(jobs, metrics_);
}

absl::StatusOr<v1::Job> TrainingWorker::StartJob(const v1::StartJobRequest& request) {
  SRN_ASSIGN_OR_RETURN(v1::TrainingSpec spec, CompleteTrainingSpec(request.spec()));
  SRN_ASSIGN_OR_RETURN(DataDirDataset dataset,
                       ResolveDatasetRef(options_.data_dir, request.dataset()));
  v1::Job job;
  job.set_dataset(dataset.description);
  *job.mutable_spec() = std::move(spec);
  JobData data;
  data.dataset = std::move(dataset);
  return queue_.Enqueue(std::move(job), std::move(data));
}

absl::StatusOr<v1::Job> TrainingWorker::StartUploadJob(const v1::TrainingSpec& in,
                                                       UploadedDataset upload) {
  SRN_ASSIGN_OR_RETURN(v1::TrainingSpec spec, CompleteTrainingSpec(in));
  if (upload.size() == 0) return absl::InvalidArgumentError("no series uploaded");
  JobData data;
  data.upload_kind = upload.kind();
  data.upload = upload.Take();
  v1::Job job;
  job.set_dataset(absl::StrCat("upload of ", data.upload->examples.size(), " series in ",
                               data.upload->num_labels(), " classes"));
  *job.mutable_spec() = std::move(spec);
  return queue_.Enqueue(std::move(job), std::move(data));
}

absl::StatusOr<v1::Job> TrainingWorker::GetJob(const std::string& job_id) {
  return queue_.Get(job_id);
}

absl::StatusOr<v1::ListJobsResponse> TrainingWorker::ListJobs(bool active_only) {
  return queue_.List(active_only);
}

absl::StatusOr<v1::Job> TrainingWorker::CancelJob(const std::string& job_id) {
  return queue_.Cancel(job_id);
}

absl::StatusOr<v1::Job> TrainingWorker::WaitForChange(const std::string& job_id, int64_t* seen,
                                                      absl::Duration timeout) {
  return queue_.WaitForChange(job_id, seen, timeout);
}

void TrainingWorker::WorkerLoop() {
  LowerThreadPriority(options_.nice, options_.sched_idle);
  while (std::shared_ptr<TrainingQueue::Entry> entry = queue_.Next()) {
    Run(entry.get());
    entry->data = JobData();  // the series are not needed any more
  }
}

void TrainingWorker::Run(TrainingQueue::Entry* entry) {
  const v1::Job job = queue_.Snapshot(entry);
  const v1::TrainingSpec& spec = job.spec();
  FeatureKind kind = FeatureKind::kFrames;
  absl::StatusOr<Dataset> data = TakeJobData(options_.data_dir, &entry->data, &kind);
  if (!data.ok()) {
    queue_.Finish(entry, v1::JOB_STATE_FAILED,
                  absl::StrCat("cannot read the dataset: ", data.status().message()));
    return;
  }
  if (data->num_labels() < 2) {
    queue_.Finish(entry, v1::JOB_STATE_FAILED,
                  absl::StrCat("the dataset has ", data->num_labels(),
                               " class(es); training needs at least 2"));
    return;
  }
  const ValidationSplit validation = *ParseValidationSplit(spec.validation());
  absl::StatusOr<Split> split =
      MakeSplit(*data, data->name, Protocol::kAll, spec.seed(), validation);
  data = Dataset();  // free the copy; the split holds what is needed
  if (!split.ok()) {
    queue_.Finish(entry, v1::JOB_STATE_FAILED,
                  absl::StrCat("cannot split the dataset: ", split.status().message()));
    return;
  }

  absl::StatusOr<TrainConfig> made = TrainConfigOf(spec);
  if (!made.ok()) {
    queue_.Finish(entry, v1::JOB_STATE_FAILED, std::string(made.status().message()));
    return;
  }
  TrainConfig& config = *made;
  config.kind = kind;
  config.options.threads = std::max(1, options_.threads);
  config.training_data = absl::StrCat(job.dataset(), ": ", split->description);
  config.command = absl::StrCat("srn-server training ", job.job_id(),
                                spec.description().empty() ? "" : ": ", spec.description());
  queue_.Update(entry, [&](v1::Job* job) {
    job->set_train_series(static_cast<int>(split->train.examples.size()));
    job->set_validation_series(static_cast<int>(split->validation.examples.size()));
  });

  TrainCallbacks callbacks;
  callbacks.cancel = &entry->cancel;
  callbacks.on_step = [&](int epoch, int step, int steps) {
    queue_.Update(entry, [&](v1::Job* job) {
      v1::JobProgress* p = job->mutable_progress();
      p->set_epoch(epoch);
      p->set_step(step);
      p->set_steps_per_epoch(steps);
      const double total = static_cast<double>(spec.max_epochs()) * steps;
      const double done = static_cast<double>(epoch - 1) * steps + step;
      const double elapsed =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - entry->started).count();
      p->set_fraction(std::min(1.0, done / total));
      p->set_elapsed_seconds(elapsed);
      p->set_estimated_remaining_seconds(done > 0 ? elapsed * (total - done) / done : 0);
    });
  };
  callbacks.on_epoch = [&](const EpochReport& r) {
    queue_.Update(entry, [&](v1::Job* job) {
      v1::JobProgress* p = job->mutable_progress();
      p->set_loss(r.train_loss);
      p->set_val_auc(r.val_auc);
      p->set_best_val_auc(std::max(p->best_val_auc(), r.val_auc));
      p->set_learning_rate(r.learning_rate);
    });
    if (!std::isfinite(r.train_loss) || r.train_loss > options_.diverged_loss) {
      queue_.RequestStop(
          entry, TrainingQueue::StopReason::kDiverged,
          absl::StrFormat(
              "training diverged: the mean loss of epoch %d is %g (chance is 0.69) at learning "
              "rate %g; lower the learning rate",
              r.epoch, r.train_loss, spec.learning_rate()));
    }
    queue_.Persist(entry);
  };
  absl::StatusOr<TrainedModel> trained =
      TrainModel(split->train, split->validation, config, callbacks);
  if (!trained.ok()) {
    queue_.Finish(entry, v1::JOB_STATE_FAILED, std::string(trained.status().message()));
    return;
  }
  if (trained->result.cancelled) {
    queue_.FinishStopped(entry);
    return;
  }

  absl::StatusOr<int64_t> version = manager_->registry()->AddModel(*trained->model, job.job_id());
  if (!version.ok()) {
    queue_.Finish(entry, v1::JOB_STATE_FAILED,
                  absl::StrCat("cannot write the model version: ", version.status().message()));
    return;
  }
  // Shown from now on, announced to watchers when the job ends.
  const double val_auc = trained->result.best_val_auc;
  const std::string model_id = ModelFingerprint(*trained->model);
  queue_.Update(
      entry,
      [&](v1::Job* job) {
        job->set_model_version(*version);
        job->set_model_id(model_id);
        job->mutable_progress()->set_best_val_auc(val_auc);
      },
      /*quiet=*/true);
  const ActivationOutcome activation =
      ApplyActivationPolicy(spec.activation(), *version, val_auc, manager_);
  queue_.Update(
      entry,
      [&](v1::Job* job) {
        job->set_activated(activation.activated);
        if (!activation.error.empty()) job->set_activation_error(activation.error);
      },
      /*quiet=*/true);
  queue_.Finish(entry, v1::JOB_STATE_SUCCEEDED, "");
}

}  // namespace srn
