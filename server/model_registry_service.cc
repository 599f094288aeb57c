#include "server/model_registry_service.h"

#include "absl/strings/str_cat.h"

namespace srn {
namespace {

enum Method { kListModels, kActivateModel, kRollbackModel };

}  // namespace

const std::vector<RpcMethod>& ModelRegistryService::Methods() {
  static const std::vector<RpcMethod>* methods = new std::vector<RpcMethod>{
      {"ListModels"}, {"ActivateModel"}, {"RollbackModel"}};
  return *methods;
}

ModelRegistryService::ModelRegistryService(ModelManager* manager, const TokenAuth* auth,
                                           ServerMetrics* metrics)
    : manager_(manager), edge_(kServiceName, Methods(), auth, metrics) {}

absl::Status ModelRegistryService::Configured() const {
  if (manager_ != nullptr && manager_->registry() != nullptr) return absl::OkStatus();
  return absl::FailedPreconditionError(
      "training and model management need the server to run with --model_dir");
}

grpc::Status ModelRegistryService::ListModels(grpc::ServerContext* ctx,
                                              const v1::ListModelsRequest* /*request*/,
                                              v1::ListModelsResponse* response) {
  return edge_.Call(*ctx, kListModels, Role::kAdmin, response,
                    [&]() -> absl::StatusOr<v1::ListModelsResponse> {
    if (absl::Status s = Configured(); !s.ok()) return s;
    v1::ListModelsResponse list = manager_->registry()->List();
    const std::string served = manager_->current()->version;
    for (v1::ModelVersion& m : *list.mutable_models()) {
      m.set_served(absl::StrCat(m.version()) == served);
    }
    return list;
  });
}

grpc::Status ModelRegistryService::ActivateModel(grpc::ServerContext* ctx,
                                                 const v1::ActivateModelRequest* request,
                                                 v1::ActivateModelResponse* response) {
  return edge_.Call(*ctx, kActivateModel, Role::kAdmin, response,
                    [&]() -> absl::StatusOr<v1::ActivateModelResponse> {
    if (absl::Status s = Configured(); !s.ok()) return s;
    return manager_->Activate(request->version());
  });
}

grpc::Status ModelRegistryService::RollbackModel(grpc::ServerContext* ctx,
                                                 const v1::RollbackModelRequest* /*request*/,
                                                 v1::ActivateModelResponse* response) {
  return edge_.Call(*ctx, kRollbackModel, Role::kAdmin, response,
                    [&]() -> absl::StatusOr<v1::ActivateModelResponse> {
    if (absl::Status s = Configured(); !s.ok()) return s;
    return manager_->Rollback();
  });
}

}  // namespace srn
