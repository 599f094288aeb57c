#ifndef SRN_SERVER_SERVER_METRICS_H_
#define SRN_SERVER_SERVER_METRICS_H_

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
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
class ServerMetrics {
 public:
  // `methods` are the RPC names of `service` (e.g. "srn.v1.SimilarityService").
  ServerMetrics(std::shared_ptr<prometheus::Registry> registry, const std::string& service,
                const std::vector<std::string>& methods);

  // Index of `method` in the constructor's list; -1 if unknown.
  int MethodIndex(const std::string& method) const;
  void RpcStarted(int method);
  void RpcHandled(int method, grpc::StatusCode code, double seconds);

  void VerifyDecision(bool accepted);
  void SeriesLength(int frames);
  void StoreCommit(double seconds);
  void SetEnrolled(int64_t subjects, int64_t references);
  // Sets srn_model_info{model_id, family} = 1 for the active model (and 0 for the previous).
  void SetModel(const std::string& model_id, const std::string& family) ABSL_LOCKS_EXCLUDED(mu_);

  prometheus::Registry& registry() { return *registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::vector<std::string> methods_;
  std::vector<prometheus::Counter*> started_;
  std::vector<std::array<prometheus::Counter*, 17>> handled_;  // by method, then status code
  std::vector<prometheus::Histogram*> handling_seconds_;
  prometheus::Counter* verify_accept_;
  prometheus::Counter* verify_reject_;
  prometheus::Histogram* series_length_;
  prometheus::Histogram* store_commit_seconds_;
  prometheus::Gauge* enrolled_subjects_;
  prometheus::Gauge* enrolled_references_;
  prometheus::Family<prometheus::Gauge>* model_info_;
  absl::Mutex mu_;
  prometheus::Gauge* active_model_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace srn

#endif  // SRN_SERVER_SERVER_METRICS_H_
