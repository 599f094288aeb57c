#include "server/server_metrics.h"

#include "absl/strings/str_cat.h"

namespace srn {
namespace {

const char* const kCodeNames[17] = {
    "OK",          "Canceled",        "Unknown",          "InvalidArgument",  "DeadlineExceeded",
    "NotFound",    "AlreadyExists",   "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
    "Aborted",     "OutOfRange",      "Unimplemented",    "Internal",         "Unavailable",
    "DataLoss",    "Unauthenticated"};

prometheus::Histogram::BucketBoundaries LatencyBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
}

}  // namespace

ServerMetrics::ServerMetrics(std::shared_ptr<prometheus::Registry> registry,
                             const std::vector<RpcService>& services)
    : registry_(std::move(registry)) {
  auto& started = prometheus::BuildCounter()
                      .Name("grpc_server_started_total")
                      .Help("Total number of RPCs started on the server.")
                      .Register(*registry_);
  auto& handled =
      prometheus::BuildCounter()
          .Name("grpc_server_handled_total")
          .Help("Total number of RPCs completed on the server, regardless of success or failure.")
          .Register(*registry_);
  auto& seconds = prometheus::BuildHistogram()
                      .Name("grpc_server_handling_seconds")
                      .Help(
                          "Histogram of response latency (seconds) of gRPC that had been "
                          "application-level handled by the server.")
                      .Register(*registry_);
  for (const RpcService& service : services) {
    for (const RpcMethod& method : service.methods) {
      methods_.push_back({service.name, method.name});
      const std::map<std::string, std::string> labels = {
          {"grpc_service", service.name}, {"grpc_method", method.name}, {"grpc_type", method.type}};
      started_.push_back(&started.Add(labels));
      handling_seconds_.push_back(&seconds.Add(labels, LatencyBuckets()));
      std::array<prometheus::Counter*, 17> by_code{};
      for (int code = 0; code < 17; ++code) {
        auto with_code = labels;
        with_code["grpc_code"] = kCodeNames[code];
        by_code[code] = &handled.Add(with_code);
      }
      handled_.push_back(by_code);
    }
  }
  auto& decisions = prometheus::BuildCounter()
                        .Name("srn_verify_decisions_total")
                        .Help("Verify decisions by outcome.")
                        .Register(*registry_);
  verify_accept_ = &decisions.Add({{"outcome", "accept"}});
  verify_reject_ = &decisions.Add({{"outcome", "reject"}});
  series_length_ = &prometheus::BuildHistogram()
                        .Name("srn_series_length_frames")
                        .Help("Frames (or pen samples) per series received.")
                        .Register(*registry_)
                        .Add({}, prometheus::Histogram::BucketBoundaries{
                                     10, 25, 50, 100, 200, 400, 800, 1600, 3200, 6400, 12800});
  store_commit_seconds_ = &prometheus::BuildHistogram()
                               .Name("srn_store_commit_seconds")
                               .Help("Time to make an Enroll or Delete durable.")
                               .Register(*registry_)
                               .Add({}, LatencyBuckets());
  auto& store_errors = prometheus::BuildCounter()
                           .Name("srn_store_errors_total")
                           .Help("Store operations that failed: op=write (an Enroll or Delete "
                                 "not made durable), op=follow (an attempt to read other "
                                 "servers' changes, retried each second).")
                           .Register(*registry_);
  http_responses_ = &prometheus::BuildCounter()
                        .Name("srn_http_responses_total")
                        .Help("HTTP responses of the JSON API and the signature pad page, by "
                              "status code.")
                        .Register(*registry_);
  store_write_errors_ = &store_errors.Add({{"op", "write"}});
  store_follow_errors_ = &store_errors.Add({{"op", "follow"}});
  follow_lag_seconds_ =
      &prometheus::BuildHistogram()
           .Name("srn_store_follow_lag_seconds")
           .Help("From a change's write in the shared store (the database's clock) to this "
                 "server applying it (its own clock), for every change followed.")
           .Register(*registry_)
           .Add({}, LatencyBuckets());
  follow_failing_ = &prometheus::BuildGauge()
                         .Name("srn_store_follow_failing")
                         .Help("1 while this server cannot read the shared store's changes "
                               "(it serves what it has), else 0.")
                         .Register(*registry_)
                         .Add({});
  auto& enrolled = prometheus::BuildGauge()
                       .Name("srn_enrolled")
                       .Help("Enrolled subjects and reference series.")
                       .Register(*registry_);
  enrolled_subjects_ = &enrolled.Add({{"kind", "subjects"}});
  enrolled_references_ = &enrolled.Add({{"kind", "references"}});
  model_info_ =
      &prometheus::BuildGauge()
           .Name("srn_model_info")
           .Help(
               "The active model (value 1), labelled by fingerprint, family and registry version.")
           .Register(*registry_);
  auto& jobs = prometheus::BuildGauge()
                   .Name("srn_training_jobs")
                   .Help("Training jobs recorded in each state.")
                   .Register(*registry_);
  for (const std::string& state : JobStates())
    training_jobs_[state] = &jobs.Add({{"state", state}});
  auto& finished = prometheus::BuildCounter()
                       .Name("srn_training_jobs_finished_total")
                       .Help("Training jobs that ended, by outcome.")
                       .Register(*registry_);
  for (const std::string& outcome : JobOutcomes()) {
    jobs_finished_[outcome] = &finished.Add({{"outcome", outcome}});
  }
  training_progress_ = &prometheus::BuildGauge()
                            .Name("srn_training_progress_ratio")
                            .Help("Progress (0..1) of the running training job(s); 0 when idle.")
                            .Register(*registry_)
                            .Add({});
  job_claims_ = &prometheus::BuildCounter()
                     .Name("srn_training_job_claims_total")
                     .Help("Queued training jobs this trainer claimed from the shared store.")
                     .Register(*registry_)
                     .Add({});
  jobs_abandoned_ = &prometheus::BuildCounter()
                         .Name("srn_training_jobs_abandoned_total")
                         .Help("Running training jobs this process ended as interrupted because "
                               "their trainer stopped heartbeating (died or lost the database).")
                         .Register(*registry_)
                         .Add({});
  missing_spreads_ = &prometheus::BuildGauge()
                         .Name("srn_subjects_missing_spreads")
                         .Help("Enrolled subjects whose references' mutual distances are still "
                               "to be derived and stored (in the background after start-up); "
                               "their Verify derives them itself meanwhile.")
                         .Register(*registry_)
                         .Add({});
  auto& prepared = prometheus::BuildGauge()
                       .Name("srn_prepared_references")
                       .Help("The cache of subjects' references prepared for Verify (DTW series "
                             "and per-frame states): bytes held and subjects.")
                       .Register(*registry_);
  prepared_bytes_ = &prepared.Add({{"kind", "bytes"}});
  prepared_subjects_ = &prepared.Add({{"kind", "subjects"}});
  model_fallback_ = &prometheus::BuildGauge()
                        .Name("srn_model_fallback")
                        .Help("1 while the server serves another version because the model "
                              "registry's active version did not load at start-up.")
                        .Register(*registry_)
                        .Add({});
  auto& swaps = prometheus::BuildCounter()
                    .Name("srn_model_swaps_total")
                    .Help("Model activations (swaps of the served model), by outcome.")
                    .Register(*registry_);
  swaps_success_ = &swaps.Add({{"outcome", "success"}});
  swaps_failure_ = &swaps.Add({{"outcome", "failure"}});
  reembed_seconds_ =
      &prometheus::BuildHistogram()
           .Name("srn_model_reembed_seconds")
           .Help("Time to re-embed every enrolled reference with a new model.")
           .Register(*registry_)
           .Add({}, prometheus::Histogram::BucketBoundaries{0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1,
                                                            2.5, 5, 10, 30, 60, 120, 300});
}

const std::vector<std::string>& ServerMetrics::JobStates() {
  static const auto* states = new std::vector<std::string>{
      "queued", "running", "succeeded", "failed", "cancelled", "interrupted"};
  return *states;
}

const std::vector<std::string>& ServerMetrics::JobOutcomes() {
  static const auto* outcomes =
      new std::vector<std::string>{"succeeded", "failed", "cancelled", "interrupted"};
  return *outcomes;
}

void ServerMetrics::SetJobCount(const std::string& state, int64_t jobs) {
  if (auto it = training_jobs_.find(state); it != training_jobs_.end()) {
    it->second->Set(static_cast<double>(jobs));
  }
}

void ServerMetrics::JobFinished(const std::string& outcome, int64_t jobs) {
  if (auto it = jobs_finished_.find(outcome); it != jobs_finished_.end() && jobs > 0) {
    it->second->Increment(static_cast<double>(jobs));
  }
}

void ServerMetrics::JobClaimed() { job_claims_->Increment(); }

void ServerMetrics::JobsAbandoned(int64_t jobs) {
  if (jobs > 0) jobs_abandoned_->Increment(static_cast<double>(jobs));
}

void ServerMetrics::SetTrainingProgress(double ratio) { training_progress_->Set(ratio); }

void ServerMetrics::ModelSwap(bool success) {
  (success ? swaps_success_ : swaps_failure_)->Increment();
}

void ServerMetrics::SetModelFallback(bool fallback) { model_fallback_->Set(fallback ? 1 : 0); }

void ServerMetrics::ReembedSeconds(double seconds) { reembed_seconds_->Observe(seconds); }

int ServerMetrics::MethodIndex(const std::string& service, const std::string& method) const {
  for (size_t i = 0; i < methods_.size(); ++i) {
    if (methods_[i].first == service && methods_[i].second == method) return static_cast<int>(i);
  }
  return -1;
}

void ServerMetrics::RpcStarted(int method) {
  if (method >= 0) started_[method]->Increment();
}

void ServerMetrics::RpcHandled(int method, grpc::StatusCode code, double seconds) {
  if (method < 0) return;
  const int c = static_cast<int>(code);
  handled_[method][c >= 0 && c < 17 ? c : 2]->Increment();
  handling_seconds_[method]->Observe(seconds);
}

void ServerMetrics::VerifyDecision(bool accepted) {
  (accepted ? verify_accept_ : verify_reject_)->Increment();
}

void ServerMetrics::SeriesLength(int frames) { series_length_->Observe(frames); }

void ServerMetrics::StoreCommit(double seconds) { store_commit_seconds_->Observe(seconds); }

void ServerMetrics::StoreWriteFailed() { store_write_errors_->Increment(); }

void ServerMetrics::FollowApplied(double lag_seconds) {
  follow_lag_seconds_->Observe(lag_seconds < 0 ? 0 : lag_seconds);
}

void ServerMetrics::SetFollowFailing(bool failing) {
  if (failing) store_follow_errors_->Increment();
  follow_failing_->Set(failing ? 1 : 0);
}

void ServerMetrics::HttpResponded(int status) {
  http_responses_->Add({{"code", absl::StrCat(status)}}).Increment();
}

void ServerMetrics::SetEnrolled(int64_t subjects, int64_t references) {
  enrolled_subjects_->Set(static_cast<double>(subjects));
  enrolled_references_->Set(static_cast<double>(references));
}

void ServerMetrics::SetMissingSpreads(int64_t subjects) {
  missing_spreads_->Set(static_cast<double>(subjects));
}

void ServerMetrics::SetPreparedCache(size_t bytes, size_t subjects) {
  prepared_bytes_->Set(static_cast<double>(bytes));
  prepared_subjects_->Set(static_cast<double>(subjects));
}

void ServerMetrics::SetModel(const std::string& model_id, const std::string& family,
                             const std::string& version) {
  // A new child per model is created only at start-up and on a model swap: rare, by design.
  prometheus::Gauge* gauge =
      &model_info_->Add({{"model_id", model_id}, {"family", family}, {"version", version}});
  MutexLock lock(&mu_);
  if (active_model_ != nullptr && active_model_ != gauge) active_model_->Set(0);
  gauge->Set(1);
  active_model_ = gauge;
}

}  // namespace srn
