#include "server/training_worker.h"

#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "model/data/dataset_loader.h"
#include "model/eval/protocols.h"
#include "model/train/train_config.h"
#include "base/status_macros.h"
#include "model/data/svc2004.h"
#include "model/weights/weights_file.h"
#include "base/clock.h"

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

int64_t JobNumber(const std::string& job_id) {
  int64_t n = 0;
  if (!absl::StartsWith(job_id, "job-") || !absl::SimpleAtoi(job_id.substr(4), &n)) return -1;
  return n;
}

bool IsInside(const std::filesystem::path& base, const std::filesystem::path& p) {
  auto b = base.begin();
  auto q = p.begin();
  for (; b != base.end(); ++b, ++q) {
    if (b->empty()) continue;  // a trailing separator
    if (q == p.end() || *q != *b) return false;
  }
  return true;
}

// Lowers the calling thread's priority: on Linux the nice value is per thread, and threads it
// starts (the trainer's shards) inherit it.
void LowerThreadPriority(int nice, bool sched_idle) {
  const pid_t tid = static_cast<pid_t>(::syscall(SYS_gettid));
  if (nice > 0) {
    const int current = ::getpriority(PRIO_PROCESS, tid);
    if (::setpriority(PRIO_PROCESS, tid, std::min(19, current + nice)) != 0) {
      std::cerr << "srn-server: cannot lower the training thread's priority: " << std::strerror(errno) << "\n";
    }
  }
  if (sched_idle) {
    sched_param param{};
    if (::sched_setscheduler(tid, SCHED_IDLE, &param) != 0) {
      std::cerr << "srn-server: cannot put the training thread in SCHED_IDLE: " << std::strerror(errno) << "\n";
    }
  }
}

}  // namespace

namespace {

// The spec's choices as they are (zero: unset); the spec has no srn-train-only fields, so those
// keep their defaults.
TrainSettings SettingsOf(const v1::TrainingSpec& spec) {
  TrainSettings s;
  s.family = spec.family();
  s.hidden = spec.hidden();
  s.layers = spec.layers();
  s.window = spec.window();
  s.center_series = spec.center_series();
  s.validation = spec.validation();
  s.learning_rate = spec.learning_rate();
  s.dropout = spec.dropout();
  s.batch_pairs = spec.batch_pairs();
  s.pairs_per_epoch = spec.pairs_per_epoch();
  s.max_epochs = spec.max_epochs();
  s.patience = spec.patience();
  s.lr_decay = spec.lr_decay();
  s.hard_negatives = spec.hard_negatives();
  s.weight_average = spec.weight_average();
  s.seed = spec.seed();
  return s;
}

void SetSettings(const TrainSettings& s, v1::TrainingSpec* spec) {
  spec->set_family(s.family);
  spec->set_hidden(s.hidden);
  spec->set_layers(s.layers);
  spec->set_window(s.window);
  spec->set_center_series(s.center_series);
  spec->set_validation(s.validation);
  spec->set_learning_rate(s.learning_rate);
  spec->set_dropout(s.dropout);
  spec->set_batch_pairs(s.batch_pairs);
  spec->set_pairs_per_epoch(s.pairs_per_epoch);
  spec->set_max_epochs(s.max_epochs);
  spec->set_patience(s.patience);
  spec->set_lr_decay(s.lr_decay);
  spec->set_hard_negatives(s.hard_negatives);
  spec->set_weight_average(s.weight_average);
  spec->set_seed(s.seed);
}

}  // namespace

absl::StatusOr<v1::TrainingSpec> CompleteTrainingSpec(const v1::TrainingSpec& in) {
  SRN_ASSIGN_OR_RETURN(const TrainSettings settings,
                       CompleteTrainSettings(SettingsOf(in), ZeroMeans::kDefault));
  v1::TrainingSpec spec = in;
  SetSettings(settings, &spec);
  if (spec.activation() == v1::ACTIVATION_POLICY_UNSPECIFIED) {
    spec.set_activation(v1::ACTIVATION_POLICY_MANUAL);
  }
  if (!v1::ActivationPolicy_IsValid(spec.activation())) {
    return absl::InvalidArgumentError(absl::StrCat("unknown activation policy ", spec.activation()));
  }
  if (spec.description().size() > 1000) {
    return absl::InvalidArgumentError("description is longer than 1000 characters");
  }
  return spec;
}

absl::StatusOr<std::string> ResolveDataPath(const std::string& data_dir, const std::string& path) {
  namespace fs = std::filesystem;
  if (data_dir.empty()) {
    return absl::FailedPreconditionError(
        "the server has no data directory (--data_dir); upload the series instead (UploadAndTrain)");
  }
  if (path.empty()) return absl::InvalidArgumentError("dataset path is empty");
  if (path.find('\0') != std::string::npos) return absl::InvalidArgumentError("dataset path contains a NUL byte");
  std::error_code ec;
  const fs::path base = fs::canonical(data_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("the data directory ", data_dir, " is not usable: ", ec.message()));
  }
  fs::path p(path);
  if (p.is_relative()) p = base / p;
  p = p.lexically_normal();
  if (!IsInside(base, p)) {
    return absl::PermissionDeniedError(
        absl::StrCat("dataset path '", path, "' leaves the data directory"));
  }
  if (!fs::exists(p, ec)) {
    return absl::NotFoundError(absl::StrCat("dataset path '", path, "' does not exist in the data directory"));
  }
  const fs::path real = fs::canonical(p, ec);
  if (ec) return absl::NotFoundError(absl::StrCat("dataset path '", path, "': ", ec.message()));
  if (!IsInside(base, real)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "dataset path '", path, "' leads outside the data directory through a symbolic link"));
  }
  return real.string();
}

absl::Status UploadedDataset::Add(const v1::LabelledSeries& in) {
  const int index = size();
  const std::string what = absl::StrCat("series[", index, "]");
  if (index >= options_.max_upload_series) {
    return absl::ResourceExhaustedError(absl::StrCat("more than ", options_.max_upload_series,
                                                     " series uploaded (--max_upload_series)"));
  }
  if (in.label().empty()) return absl::InvalidArgumentError(absl::StrCat(what, ": label is empty"));
  if (in.label().size() > 256) return absl::InvalidArgumentError(absl::StrCat(what, ": label is longer than 256 bytes"));
  const FeatureKind kind =
      in.series().kind_case() == v1::SeriesInput::kPen ? FeatureKind::kSignature : FeatureKind::kFrames;
  if (index > 0 && kind != kind_) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": mixes pen samples and frames; all uploaded series must be of one kind"));
  }
  SRN_ASSIGN_OR_RETURN(Series series, ToTrainingSeries(in.series(), options_.limits, what));
  if (index > 0 && series.dims() != data_.dims()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": has ", series.dims(),
                                                   " features per frame; series[0] has ", data_.dims()));
  }
  kind_ = kind;
  auto [it, inserted] = labels_.emplace(in.label(), static_cast<int>(labels_.size()));
  if (inserted) data_.label_names.push_back(in.label());
  Example e;
  e.series = std::move(series);
  e.label = it->second;
  e.forgery = in.forgery();
  e.source = what;
  data_.examples.push_back(std::move(e));
  return absl::OkStatus();
}

TrainingWorker::TrainingWorker(JobStore* store, ModelRegistry* registry,
                               const TrainingOptions& options, ServerMetrics* metrics)
    : store_(store), registry_(registry), options_(options), metrics_(metrics) {}

TrainingWorker::~TrainingWorker() { Stop(); }

bool TrainingWorker::IsTerminal(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
         state == v1::JOB_STATE_CANCELLED || state == v1::JOB_STATE_INTERRUPTED;
}

absl::Status TrainingWorker::Start() {
  SRN_ASSIGN_OR_RETURN(std::vector<v1::Job> jobs, store_->LoadAll());
  int64_t interrupted = 0;
  std::vector<std::shared_ptr<Entry>> changed;
  {
    absl::MutexLock lock(&mu_);
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
      entry->job = std::move(job);
      jobs_[JobNumber(entry->job.job_id())] = entry;
    }
    UpdateMetrics();
  }
  for (const auto& entry : changed) Persist(entry.get());
  if (metrics_ != nullptr) metrics_->JobFinished("interrupted", interrupted);
  for (int i = 0; i < std::max(1, options_.max_jobs); ++i) {
    threads_.emplace_back([this] { WorkerLoop(); });
  }
  return absl::OkStatus();
}

void TrainingWorker::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& [n, entry] : jobs_) {
      if (entry->job.state() == v1::JOB_STATE_RUNNING) {
        entry->stop = StopReason::kShutdown;
        entry->cancel.store(true);
      }
    }
  }
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

std::shared_ptr<TrainingWorker::Entry> TrainingWorker::Find(const std::string& job_id) const {
  auto it = jobs_.find(JobNumber(job_id));
  return it == jobs_.end() ? nullptr : it->second;
}

void TrainingWorker::Changed(Entry* entry) { ++entry->changes; }

void TrainingWorker::UpdateMetrics() {
  if (metrics_ == nullptr) return;
  std::map<std::string, int64_t> counts;
  double progress = 0;
  int running = 0;
  for (const auto& [n, entry] : jobs_) {
    ++counts[StateName(entry->job.state())];
    if (entry->job.state() == v1::JOB_STATE_RUNNING) {
      progress += entry->job.progress().fraction();
      ++running;
    }
  }
  for (const std::string& state : ServerMetrics::JobStates()) metrics_->SetJobCount(state, counts[state]);
  metrics_->SetTrainingProgress(running > 0 ? progress / running : 0.0);
}

void TrainingWorker::Persist(Entry* entry) {
  absl::MutexLock order(&persist_mu_);
  v1::Job copy;
  {
    absl::MutexLock lock(&mu_);
    copy = entry->job;
  }
  if (absl::Status s = store_->Update(copy); !s.ok()) {
    std::cerr << "srn-server: cannot record " << copy.job_id() << ": " << s.message() << "\n";
  }
}

absl::StatusOr<v1::Job> TrainingWorker::Enqueue(std::shared_ptr<Entry> entry) {
  entry->job.set_state(v1::JOB_STATE_QUEUED);
  entry->job.set_created_unix_ms(NowUnixMs());
  entry->job.mutable_progress()->set_max_epochs(entry->job.spec().max_epochs());
  absl::MutexLock order(&persist_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ || !started_) {
      return absl::UnavailableError("the training worker is not running (the server is shutting down)");
    }
  }
  SRN_RETURN_IF_ERROR(store_->Create(&entry->job));
  absl::MutexLock lock(&mu_);
  jobs_[JobNumber(entry->job.job_id())] = entry;
  queue_.push_back(entry);
  UpdateMetrics();
  return entry->job;
}

absl::StatusOr<v1::Job> TrainingWorker::StartJob(const v1::StartJobRequest& request) {
  SRN_ASSIGN_OR_RETURN(v1::TrainingSpec spec, CompleteTrainingSpec(request.spec()));
  const v1::DatasetRef& ref = request.dataset();
  if (ref.format() == v1::DATASET_FORMAT_UNSPECIFIED || !v1::DatasetFormat_IsValid(ref.format())) {
    return absl::InvalidArgumentError("dataset.format must be ARABIC_DIGIT, SVC2004 or CSV");
  }
  for (int user : ref.svc2004_users()) {
    if (user < 1 || user > kSvc2004Users) {
      return absl::InvalidArgumentError(absl::StrCat("svc2004_users must be in 1..40, got ", user));
    }
  }
  if (ref.format() != v1::DATASET_FORMAT_SVC2004 && ref.svc2004_users_size() > 0) {
    return absl::InvalidArgumentError("svc2004_users is only for the SVC2004 format");
  }
  SRN_ASSIGN_OR_RETURN(std::string path, ResolveDataPath(options_.data_dir, ref.path()));
  const bool is_dir = std::filesystem::is_directory(path);
  if (ref.format() == v1::DATASET_FORMAT_CSV ? is_dir : !is_dir) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dataset path '", ref.path(), "' must be ",
        ref.format() == v1::DATASET_FORMAT_CSV ? "a CSV manifest file" : "a folder", " for this format"));
  }
  auto entry = std::make_shared<Entry>();
  entry->path = path;
  entry->ref = ref;
  std::string what = ref.format() == v1::DATASET_FORMAT_ARABIC_DIGIT
                         ? (ref.arabic_label_speaker() ? "arabic digits by speaker" : "arabic digits")
                     : ref.format() == v1::DATASET_FORMAT_SVC2004 ? "svc2004"
                                                                  : "csv manifest";
  absl::StrAppend(&what, " ", ref.path());
  if (ref.svc2004_users_size() > 0) {
    absl::StrAppend(&what, " (users ", absl::StrJoin(ref.svc2004_users(), ","), ")");
  }
  entry->job.set_dataset(what);
  *entry->job.mutable_spec() = spec;
  return Enqueue(std::move(entry));
}

absl::StatusOr<v1::Job> TrainingWorker::StartUploadJob(const v1::TrainingSpec& in,
                                                       UploadedDataset upload) {
  SRN_ASSIGN_OR_RETURN(v1::TrainingSpec spec, CompleteTrainingSpec(in));
  if (upload.size() == 0) return absl::InvalidArgumentError("no series uploaded");
  auto entry = std::make_shared<Entry>();
  entry->upload_kind = upload.kind();
  entry->upload = upload.Take();
  entry->job.set_dataset(absl::StrCat("upload of ", entry->upload->examples.size(), " series in ",
                                      entry->upload->num_labels(), " classes"));
  *entry->job.mutable_spec() = spec;
  return Enqueue(std::move(entry));
}

absl::StatusOr<v1::Job> TrainingWorker::GetJob(const std::string& job_id) const {
  absl::MutexLock lock(&mu_);
  std::shared_ptr<Entry> entry = Find(job_id);
  if (entry == nullptr) return absl::NotFoundError(absl::StrCat("no job '", job_id, "'"));
  return entry->job;
}

v1::ListJobsResponse TrainingWorker::ListJobs(bool active_only) const {
  absl::MutexLock lock(&mu_);
  v1::ListJobsResponse response;
  for (auto it = jobs_.rbegin(); it != jobs_.rend(); ++it) {
    if (active_only && IsTerminal(it->second->job.state())) continue;
    *response.add_jobs() = it->second->job;
  }
  return response;
}

absl::StatusOr<v1::Job> TrainingWorker::CancelJob(const std::string& job_id) {
  std::shared_ptr<Entry> entry;
  {
    absl::MutexLock lock(&mu_);
    entry = Find(job_id);
    if (entry == nullptr) return absl::NotFoundError(absl::StrCat("no job '", job_id, "'"));
    const v1::JobState state = entry->job.state();
    if (IsTerminal(state)) {
      return absl::FailedPreconditionError(
          absl::StrCat(job_id, " already ended (", StateName(state), ")"));
    }
    if (state == v1::JOB_STATE_RUNNING) {
      // The worker ends it at the next mini-batch.
      if (entry->stop == StopReason::kNone) entry->stop = StopReason::kCancelled;
      entry->cancel.store(true);
      return entry->job;
    }
    for (auto it = queue_.begin(); it != queue_.end(); ++it) {
      if (*it == entry) {
        queue_.erase(it);
        break;
      }
    }
  }
  Finish(entry.get(), v1::JOB_STATE_CANCELLED, "cancelled by request before it started");
  absl::MutexLock lock(&mu_);
  return entry->job;
}

absl::StatusOr<v1::Job> TrainingWorker::WaitForChange(const std::string& job_id, int64_t* seen,
                                                      absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  std::shared_ptr<Entry> entry = Find(job_id);
  if (entry == nullptr) return absl::NotFoundError(absl::StrCat("no job '", job_id, "'"));
  const int64_t after = *seen;
  const Entry* e = entry.get();
  auto changed = [e, after] { return e->changes != after; };
  mu_.AwaitWithTimeout(absl::Condition(&changed), timeout);
  *seen = entry->changes;
  return entry->job;
}

void TrainingWorker::Finish(Entry* entry, v1::JobState state, const std::string& reason) {
  {
    absl::MutexLock lock(&mu_);
    entry->job.set_state(state);
    entry->job.set_reason(reason);
    entry->job.set_finished_unix_ms(NowUnixMs());
    Changed(entry);
    UpdateMetrics();
  }
  if (metrics_ != nullptr) metrics_->JobFinished(StateName(state));
  Persist(entry);
}

void TrainingWorker::WorkerLoop() {
  LowerThreadPriority(options_.nice, options_.sched_idle);
  for (;;) {
    std::shared_ptr<Entry> entry;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !queue_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      entry = queue_.front();
      queue_.pop_front();
      entry->job.set_state(v1::JOB_STATE_RUNNING);
      entry->job.set_started_unix_ms(NowUnixMs());
      entry->started = std::chrono::steady_clock::now();
      Changed(entry.get());
      UpdateMetrics();
    }
    Persist(entry.get());
    Run(entry.get());
    entry->upload.reset();  // the series are not needed any more
  }
}

absl::StatusOr<Dataset> TrainingWorker::LoadData(Entry* entry, FeatureKind* kind) {
  if (entry->upload.has_value()) {
    *kind = entry->upload_kind;
    Dataset data = std::move(*entry->upload);
    entry->upload.reset();
    return data;
  }
  const v1::DatasetRef& ref = entry->ref;
  DatasetSource source;
  switch (ref.format()) {
    case v1::DATASET_FORMAT_ARABIC_DIGIT:
      source.format = DatasetFormat::kArabicDigit;
      break;
    case v1::DATASET_FORMAT_SVC2004:
      source.format = DatasetFormat::kSvc2004;
      break;
    case v1::DATASET_FORMAT_CSV:
      source.format = DatasetFormat::kCsv;
      break;
    default:
      return absl::InvalidArgumentError("unknown dataset format");
  }
  source.path = entry->path;
  source.arabic_label = ref.arabic_label_speaker() ? ArabicLabel::kSpeaker : ArabicLabel::kDigit;
  source.svc2004_users.assign(ref.svc2004_users().begin(), ref.svc2004_users().end());
  *kind = DatasetKind(source.format);
  SRN_ASSIGN_OR_RETURN(Dataset data, LoadDataset(source));
  if (source.format == DatasetFormat::kCsv) {
    // The manifest's rows may name any file; only those inside the data directory are allowed.
    for (const Example& e : data.examples) {
      absl::StatusOr<std::string> inside = ResolveDataPath(options_.data_dir, e.source);
      if (!inside.ok()) {
        return absl::PermissionDeniedError(
            absl::StrCat(ref.path(), ": series file ", e.source, ": ", inside.status().message()));
      }
    }
  }
  return data;
}

void TrainingWorker::Run(Entry* entry) {
  const v1::TrainingSpec spec = [&] {
    absl::MutexLock lock(&mu_);
    return entry->job.spec();
  }();
  FeatureKind kind = FeatureKind::kFrames;
  absl::StatusOr<Dataset> data = LoadData(entry, &kind);
  if (!data.ok()) {
    Finish(entry, v1::JOB_STATE_FAILED, absl::StrCat("cannot read the dataset: ", data.status().message()));
    return;
  }
  if (data->num_labels() < 2) {
    Finish(entry, v1::JOB_STATE_FAILED,
           absl::StrCat("the dataset has ", data->num_labels(), " class(es); training needs at least 2"));
    return;
  }
  const ValidationSplit validation = *ParseValidationSplit(spec.validation());
  absl::StatusOr<Split> split = MakeSplit(*data, data->name, Protocol::kAll, spec.seed(), validation);
  data = Dataset();  // free the copy; the split holds what is needed
  if (!split.ok()) {
    Finish(entry, v1::JOB_STATE_FAILED, absl::StrCat("cannot split the dataset: ", split.status().message()));
    return;
  }

  absl::StatusOr<TrainConfig> made = MakeTrainConfig(SettingsOf(spec));
  if (!made.ok()) {
    Finish(entry, v1::JOB_STATE_FAILED, std::string(made.status().message()));
    return;
  }
  TrainConfig& config = *made;
  config.kind = kind;
  config.options.threads = std::max(1, options_.threads);
  {
    absl::MutexLock lock(&mu_);
    config.training_data = absl::StrCat(entry->job.dataset(), ": ", split->description);
    config.command = absl::StrCat("srn-server training ", entry->job.job_id(),
                                  spec.description().empty() ? "" : ": ", spec.description());
    entry->job.set_train_series(static_cast<int>(split->train.examples.size()));
    entry->job.set_validation_series(static_cast<int>(split->validation.examples.size()));
    Changed(entry);
  }

  TrainCallbacks callbacks;
  callbacks.cancel = &entry->cancel;
  callbacks.on_step = [&](int epoch, int step, int steps) {
    absl::MutexLock lock(&mu_);
    v1::JobProgress* p = entry->job.mutable_progress();
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
    Changed(entry);
    UpdateMetrics();
  };
  callbacks.on_epoch = [&](const EpochReport& r) {
    {
      absl::MutexLock lock(&mu_);
      v1::JobProgress* p = entry->job.mutable_progress();
      p->set_loss(r.train_loss);
      p->set_val_auc(r.val_auc);
      p->set_best_val_auc(std::max(p->best_val_auc(), r.val_auc));
      p->set_learning_rate(r.learning_rate);
      if (!std::isfinite(r.train_loss) || r.train_loss > options_.diverged_loss) {
        entry->stop = StopReason::kDiverged;
        entry->diverged = absl::StrFormat(
            "training diverged: the mean loss of epoch %d is %g (chance is 0.69) at learning rate "
            "%g; lower the learning rate",
            r.epoch, r.train_loss, spec.learning_rate());
        entry->cancel.store(true);
      }
      Changed(entry);
    }
    Persist(entry);
  };
  absl::StatusOr<TrainedModel> trained = TrainModel(split->train, split->validation, config, callbacks);
  if (!trained.ok()) {
    Finish(entry, v1::JOB_STATE_FAILED, std::string(trained.status().message()));
    return;
  }
  if (trained->result.cancelled) {
    StopReason stop;
    std::string diverged;
    {
      absl::MutexLock lock(&mu_);
      stop = entry->stop;
      diverged = entry->diverged;
    }
    switch (stop) {
      case StopReason::kDiverged:
        Finish(entry, v1::JOB_STATE_FAILED, diverged);
        break;
      case StopReason::kShutdown:
        Finish(entry, v1::JOB_STATE_INTERRUPTED, "the server shut down while the job was running");
        break;
      default:
        Finish(entry, v1::JOB_STATE_CANCELLED, "cancelled by request while running");
        break;
    }
    return;
  }

  absl::StatusOr<int64_t> version = registry_->AddModel(*trained->model, entry->job.job_id());
  if (!version.ok()) {
    Finish(entry, v1::JOB_STATE_FAILED,
           absl::StrCat("cannot write the model version: ", version.status().message()));
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    entry->job.set_model_version(*version);
    entry->job.set_model_id(ModelFingerprint(*trained->model));
    entry->job.mutable_progress()->set_best_val_auc(trained->result.best_val_auc);
  }
  bool activate = spec.activation() == v1::ACTIVATION_POLICY_ALWAYS;
  if (spec.activation() == v1::ACTIVATION_POLICY_IF_BETTER) {
    const std::optional<double> active = registry_->ActiveValAuc();
    activate = !active.has_value() || trained->result.best_val_auc > *active;
  }
  if (activate) {
    absl::StatusOr<v1::ActivateModelResponse> activated = registry_->Activate(*version);
    absl::MutexLock lock(&mu_);
    entry->job.set_activated(activated.ok());
    if (!activated.ok()) entry->job.set_activation_error(std::string(activated.status().message()));
  }
  Finish(entry, v1::JOB_STATE_SUCCEEDED, "");
}

}  // namespace srn
