#ifndef SRN_SERVER_SERVER_METRICS_H_
#define SRN_SERVER_SERVER_METRICS_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/mutex.h"
#include "grpcpp/support/status.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace srn {

// Every metric the server exports, created once at start-up so that the request path only
// increments existing children. Labels are low-cardinality (method, code, outcome); subject ids
// never appear. The gRPC metrics follow the names of the go-grpc-prometheus middleware that
// Prometheus users know. Thread-safe (prometheus-cpp metrics are atomic).
// One RPC of a service, as the gRPC metrics label it.
struct RpcMethod {
  std::string name;
  std::string type = "unary";  // unary, client_stream, server_stream or bidi_stream
};
struct RpcService {
  std::string name;  // e.g. "srn.v1.SimilarityService"
  std::vector<RpcMethod> methods;
};

class ServerMetrics final {
 public:
  // Creates the per-RPC metrics of every method of `services`.
  ServerMetrics(std::shared_ptr<prometheus::Registry> registry,
                const std::vector<RpcService>& services);

  // The index RpcStarted/RpcHandled take for `method` of `service`; -1 if unknown.
  int MethodIndex(const std::string& service, const std::string& method) const;
  void RpcStarted(int method);
  void RpcHandled(int method, grpc::StatusCode code, double seconds);

  void VerifyDecision(bool accepted);
  void SeriesLength(int frames);
  void StoreCommit(double seconds);
  // srn_store_errors_total{op="write"}: an Enroll or Delete the store did not make durable.
  void StoreWriteFailed();
  // Following a shared store: srn_store_follow_lag_seconds observes each change applied (a
  // negative lag, from clocks apart, counts as 0); srn_store_follow_failing is 1 during an
  // outage, and each failed attempt counts in srn_store_errors_total{op="follow"}.
  void FollowApplied(double lag_seconds);
  void SetFollowFailing(bool failing);
  void SetEnrolled(int64_t subjects, int64_t references);
  // srn_http_responses_total{code}: every HTTP response, by status (the API's calls are also
  // counted as RPCs, since the HTTP gateway makes them on the server's in-process channel).
  void HttpResponded(int status);
  // srn_subjects_missing_spreads: subjects whose references' spreads are still to be derived in
  // the background after start-up (SimilarityCore::DeriveMissingSpreads).
  void SetMissingSpreads(int64_t subjects);
  // srn_prepared_references{kind="bytes"|"subjects"}: what the cache of references prepared for
  // Verify holds (--prepared_cache_mb bounds the bytes).
  void SetPreparedCache(size_t bytes, size_t subjects);
  // Sets srn_model_info{model_id, family, version} = 1 for the active model (and 0 for the
  // previous). `version` is the registry version ("" when the server runs without --model_dir).
  void SetModel(const std::string& model_id, const std::string& family,
                const std::string& version = "") ABSL_LOCKS_EXCLUDED(mu_);

  // Training and the model registry. States and outcomes are those of srn.v1.JobState in lower
  // case; every label value exists from start-up.
  static const std::vector<std::string>&
  JobStates();  // queued running succeeded failed cancelled interrupted
  static const std::vector<std::string>& JobOutcomes();  // succeeded failed cancelled interrupted
  // srn_training_jobs{state}: jobs recorded in each state.
  void SetJobCount(const std::string& state, int64_t jobs);
  // srn_training_jobs_finished_total{outcome}.
  void JobFinished(const std::string& outcome, int64_t jobs = 1);
  // srn_training_job_claims_total: queued jobs this trainer claimed from a shared store.
  void JobClaimed();
  // srn_training_jobs_abandoned_total: running jobs this process ended (as interrupted) because
  // their trainer stopped heartbeating.
  void JobsAbandoned(int64_t jobs);
  // srn_training_progress_ratio: 0..1 of the running job(s), 0 when idle.
  void SetTrainingProgress(double ratio);
  // srn_model_swaps_total{outcome} and, for a swap that got to re-embedding,
  // srn_model_reembed_seconds.
  void ModelSwap(bool success);
  // srn_model_fallback: 1 while the server serves another version because the registry's
  // active one did not load at start-up (an alert watches it); 0 once a version is activated.
  void SetModelFallback(bool fallback);
  void ReembedSeconds(double seconds);

  prometheus::Registry& registry() { return *registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::vector<std::pair<std::string, std::string>> methods_;  // (service, method) by index
  std::vector<prometheus::Counter*> started_;
  std::vector<std::array<prometheus::Counter*, 17>> handled_;  // by method, then status code
  std::vector<prometheus::Histogram*> handling_seconds_;
  prometheus::Counter* verify_accept_;
  prometheus::Counter* verify_reject_;
  prometheus::Histogram* series_length_;
  prometheus::Histogram* store_commit_seconds_;
  prometheus::Counter* store_write_errors_;
  prometheus::Counter* store_follow_errors_;
  prometheus::Histogram* follow_lag_seconds_;
  prometheus::Gauge* follow_failing_;
  prometheus::Family<prometheus::Counter>* http_responses_;
  prometheus::Gauge* enrolled_subjects_;
  prometheus::Gauge* enrolled_references_;
  prometheus::Gauge* missing_spreads_;
  prometheus::Gauge* prepared_bytes_;
  prometheus::Gauge* prepared_subjects_;
  prometheus::Family<prometheus::Gauge>* model_info_;
  std::map<std::string, prometheus::Gauge*> training_jobs_;
  std::map<std::string, prometheus::Counter*> jobs_finished_;
  prometheus::Gauge* training_progress_;
  prometheus::Counter* job_claims_;
  prometheus::Counter* jobs_abandoned_;
  prometheus::Gauge* model_fallback_;
  prometheus::Counter* swaps_success_;
  prometheus::Counter* swaps_failure_;
  prometheus::Histogram* reembed_seconds_;
  Mutex mu_;
  prometheus::Gauge* active_model_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace srn

#endif  // SRN_SERVER_SERVER_METRICS_H_
