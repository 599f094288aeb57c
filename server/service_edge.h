#ifndef SRN_SERVER_SERVICE_EDGE_H_
#define SRN_SERVER_SERVICE_EDGE_H_

#include <atomic>
#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/status.h"
#include "server/auth.h"
#include "server/grpc_status.h"
#include "server/server_metrics.h"

namespace srn {

// What every RPC of srn does at the service edge, in one place (as TF Serving's service
// implementations do): refuses calls while the server starts or drains, past their deadline, or
// from a caller without the role; runs the call; converts its absl::Status into a grpc::Status;
// and records the per-RPC metrics. Services hold one edge each and stay thin.
// Thread-safe; `auth` and `metrics` (may be null) must outlive the edge.
class ServiceEdge final {
 public:
  // `service` and its `methods` must be among those `metrics` was built with.
  ServiceEdge(std::string service, const std::vector<RpcMethod>& methods, const TokenAuth* auth,
              ServerMetrics* metrics);

  // Until ready, every call gets UNAVAILABLE ("starting"); once draining, UNAVAILABLE
  // ("shutting down").
  void SetReady(bool ready) { ready_.store(ready); }
  void StartDraining() { draining_.store(true); }

  bool draining() const { return draining_.load(); }

  // One call of method number `method` (its index in the constructor's list): checks, then
  // fn() -> absl::Status.
  template <typename Fn>
  grpc::Status Call(const grpc::ServerContextBase& ctx, int method, Role required,
                    Fn&& fn) const {
    const auto start = std::chrono::steady_clock::now();
    Started(method);
    grpc::Status status = Check(ctx, method, required);
    if (status.ok()) status = ToGrpcStatus(fn());
    Handled(method, status.error_code(), start);
    return status;
  }

  // The same for fn() -> absl::StatusOr<Response>, moved into *response when OK.
  template <typename Response, typename Fn>
  grpc::Status Call(const grpc::ServerContextBase& ctx, int method, Role required,
                    Response* response, Fn&& fn) const {
    return Call(ctx, method, required, [&]() -> absl::Status {
      auto result = fn();
      if (!result.ok()) return result.status();
      *response = *std::move(result);
      return absl::OkStatus();
    });
  }

 private:
  grpc::Status Check(const grpc::ServerContextBase& ctx, int method, Role required) const;
  void Started(int method) const;
  void Handled(int method, grpc::StatusCode code,
               std::chrono::steady_clock::time_point start) const;

  const std::string service_;
  std::vector<std::string> names_;
  std::vector<int> metric_index_;  // by method: the index in ServerMetrics
  const TokenAuth* const auth_;
  ServerMetrics* const metrics_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> draining_{false};
};

}  // namespace srn

#endif  // SRN_SERVER_SERVICE_EDGE_H_
