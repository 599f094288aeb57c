#include "server/service_edge.h"

#include "server/grpc_auth.h"

namespace srn {

ServiceEdge::ServiceEdge(std::string service, const std::vector<RpcMethod>& methods,
                         const TokenAuth* auth, ServerMetrics* metrics)
    : service_(std::move(service)), auth_(auth), metrics_(metrics) {
  for (const RpcMethod& method : methods) {
    names_.push_back(method.name);
    metric_index_.push_back(metrics_ == nullptr ? -1
                                                : metrics_->MethodIndex(service_, method.name));
  }
}

grpc::Status ServiceEdge::Check(const grpc::ServerContextBase& ctx, int method,
                                Role required) const {
  if (draining_.load()) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down");
  }
  if (!ready_.load()) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is starting");
  if (ctx.deadline() < std::chrono::system_clock::now()) {
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                        "the deadline passed before the call was handled");
  }
  absl::StatusOr<Role> role = CallerRole(ctx, *auth_);
  if (!role.ok()) return ToGrpcStatus(role.status());
  return ToGrpcStatus(TokenAuth::Authorize(*role, required, names_[method]));
}

void ServiceEdge::Started(int method) const {
  if (metrics_ != nullptr) metrics_->RpcStarted(metric_index_[method]);
}

void ServiceEdge::Handled(int method, grpc::StatusCode code,
                          std::chrono::steady_clock::time_point start) const {
  if (metrics_ == nullptr) return;
  metrics_->RpcHandled(
      metric_index_[method], code,
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

}  // namespace srn
