#include "server/model_registry_service.h"

#include "absl/strings/str_cat.h"
#include "model/weights/weights_file.h"

namespace srn {
namespace {

enum Method { kListModels, kActivateModel, kRollbackModel, kImportModel };

}  // namespace

const std::vector<RpcMethod>& ModelRegistryService::Methods() {
  static const std::vector<RpcMethod>* methods = new std::vector<RpcMethod>{
      {"ListModels"}, {"ActivateModel"}, {"RollbackModel"}, {"ImportModel"}};
  return *methods;
}

ModelRegistryService::ModelRegistryService(ModelManager* manager, const TokenAuth* auth,
                                           ServerMetrics* metrics)
    : manager_(manager), edge_(kServiceName, Methods(), auth, metrics) {}

absl::Status ModelRegistryService::Configured() const {
  if (manager_ != nullptr && manager_->registry() != nullptr) return absl::OkStatus();
  return absl::FailedPreconditionError(
      "model management needs the server to run with --model_dir (or a PostgreSQL store)");
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

grpc::Status ModelRegistryService::ImportModel(grpc::ServerContext* ctx,
                                               const v1::ImportModelRequest* request,
                                               v1::ModelVersion* response) {
  return edge_.Call(
      *ctx, kImportModel, Role::kAdmin, response, [&]() -> absl::StatusOr<v1::ModelVersion> {
        if (absl::Status s = Configured(); !s.ok()) return s;
        absl::StatusOr<std::shared_ptr<const SimilarityModel>> model =
            ParseModel(request->weights(), "the uploaded weights");
        if (!model.ok()) {
          return absl::InvalidArgumentError(
              absl::StrCat("cannot import the weights: ", model.status().message(),
                           " (send the bytes of a .srnw file that srn-train wrote)"));
        }
        const std::string origin = request->origin().empty() ? "imported" : request->origin();
        ModelRegistry* registry = manager_->registry();
        absl::StatusOr<int64_t> version = registry->AddModel(**model, origin);
        if (!version.ok()) return version.status();
        return registry->Find(*version);
      });
}

}  // namespace srn
