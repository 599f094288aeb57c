#ifndef SRN_SERVER_MODEL_REGISTRY_SERVICE_H_
#define SRN_SERVER_MODEL_REGISTRY_SERVICE_H_

#include <vector>

#include "grpcpp/grpcpp.h"
#include "server/auth.h"
#include "server/model_manager.h"
#include "server/server_metrics.h"
#include "server/service_edge.h"
#include "srn/v1/training.grpc.pb.h"

namespace srn {

// The gRPC face of the model registry (srn.v1.ModelRegistry in proto/srn/v1/training.proto):
// listing versions, activation and rollback through the ModelManager. Every call goes through
// the ServiceEdge (admin role, readiness, deadline, metrics). Without --model_dir (a manager
// without a registry, or none) every call fails with FAILED_PRECONDITION. Synchronous, like the
// training service. Thread-safe; all pointers must outlive the service.
class ModelRegistryService final : public v1::ModelRegistry::Service {
 public:
  static constexpr char kServiceName[] = "srn.v1.ModelRegistry";
  // Its RPCs, for ServerMetrics.
  static const std::vector<RpcMethod>& Methods();
  ModelRegistryService(ModelManager* manager, const TokenAuth* auth, ServerMetrics* metrics);

  void SetReady(bool ready) { edge_.SetReady(ready); }
  void StartDraining() { edge_.StartDraining(); }

  grpc::Status ListModels(grpc::ServerContext* ctx, const v1::ListModelsRequest* request,
                          v1::ListModelsResponse* response) override;
  grpc::Status ActivateModel(grpc::ServerContext* ctx, const v1::ActivateModelRequest* request,
                             v1::ActivateModelResponse* response) override;
  grpc::Status ImportModel(grpc::ServerContext* ctx, const v1::ImportModelRequest* request,
                           v1::ModelVersion* response) override;
  grpc::Status RollbackModel(grpc::ServerContext* ctx, const v1::RollbackModelRequest* request,
                             v1::ActivateModelResponse* response) override;

 private:
  absl::Status Configured() const;

  ModelManager* const manager_;
  ServiceEdge edge_;
};

}  // namespace srn

#endif  // SRN_SERVER_MODEL_REGISTRY_SERVICE_H_
