#include "server/similarity_service.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "server/grpc_auth.h"
#include "server/grpc_status.h"

namespace srn {
namespace {

enum Method { kEmbed, kSimilarity, kEnroll, kVerify, kIdentify, kGetSubject, kListSubjects,
              kDeleteSubject, kGetModelInfo };

}  // namespace

const std::vector<std::string>& SimilarityService::MethodNames() {
  static const std::vector<std::string>* names = new std::vector<std::string>{
      "Embed", "Similarity", "Enroll", "Verify", "Identify", "GetSubject", "ListSubjects",
      "DeleteSubject", "GetModelInfo"};
  return *names;
}

SimilarityService::SimilarityService(SimilarityCore* core, const TokenAuth* auth,
                                     ServerMetrics* metrics)
    : core_(core), auth_(auth), metrics_(metrics) {}

template <typename Response, typename Fn>
grpc::ServerUnaryReactor* SimilarityService::Handle(grpc::CallbackServerContext* ctx, int method,
                                                    Role required, Response* response, Fn&& fn) {
  const auto start = std::chrono::steady_clock::now();
  if (metrics_ != nullptr) metrics_->RpcStarted(method);
  const grpc::Status status = [&]() -> grpc::Status {
    if (draining_.load()) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down");
    if (!ready_.load()) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is starting");
    if (ctx->deadline() < std::chrono::system_clock::now()) {
      return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "the deadline passed before the call was handled");
    }
    absl::StatusOr<Role> role = CallerRole(*ctx, *auth_);
    if (!role.ok()) return ToGrpcStatus(role.status());
    if (absl::Status s = TokenAuth::Authorize(*role, required, MethodNames()[method]); !s.ok()) {
      return ToGrpcStatus(s);
    }
    auto result = fn();
    if (!result.ok()) return ToGrpcStatus(result.status());
    *response = *std::move(result);
    return grpc::Status::OK;
  }();
  if (metrics_ != nullptr) {
    metrics_->RpcHandled(method, status.error_code(),
                         std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

grpc::ServerUnaryReactor* SimilarityService::Embed(grpc::CallbackServerContext* ctx,
                                                   const v1::EmbedRequest* request,
                                                   v1::EmbedResponse* response) {
  return Handle(ctx, kEmbed, Role::kReader, response, [&] { return core_->Embed(*request); });
}

grpc::ServerUnaryReactor* SimilarityService::Similarity(grpc::CallbackServerContext* ctx,
                                                        const v1::SimilarityRequest* request,
                                                        v1::SimilarityResponse* response) {
  return Handle(ctx, kSimilarity, Role::kReader, response, [&] { return core_->Similarity(*request); });
}

grpc::ServerUnaryReactor* SimilarityService::Enroll(grpc::CallbackServerContext* ctx,
                                                    const v1::EnrollRequest* request,
                                                    v1::EnrollResponse* response) {
  return Handle(ctx, kEnroll, Role::kAdmin, response, [&] { return core_->Enroll(*request); });
}

grpc::ServerUnaryReactor* SimilarityService::Verify(grpc::CallbackServerContext* ctx,
                                                    const v1::VerifyRequest* request,
                                                    v1::VerifyResponse* response) {
  return Handle(ctx, kVerify, Role::kReader, response, [&] { return core_->Verify(*request); });
}

grpc::ServerUnaryReactor* SimilarityService::Identify(grpc::CallbackServerContext* ctx,
                                                      const v1::IdentifyRequest* request,
                                                      v1::IdentifyResponse* response) {
  return Handle(ctx, kIdentify, Role::kReader, response, [&] { return core_->Identify(*request); });
}

grpc::ServerUnaryReactor* SimilarityService::GetSubject(grpc::CallbackServerContext* ctx,
                                                        const v1::GetSubjectRequest* request,
                                                        v1::Subject* response) {
  return Handle(ctx, kGetSubject, Role::kReader, response, [&] { return core_->GetSubject(*request); });
}

grpc::ServerUnaryReactor* SimilarityService::ListSubjects(grpc::CallbackServerContext* ctx,
                                                          const v1::ListSubjectsRequest* request,
                                                          v1::ListSubjectsResponse* response) {
  return Handle(ctx, kListSubjects, Role::kReader, response,
                [&] { return core_->ListSubjects(*request); });
}

grpc::ServerUnaryReactor* SimilarityService::DeleteSubject(grpc::CallbackServerContext* ctx,
                                                           const v1::DeleteSubjectRequest* request,
                                                           v1::DeleteSubjectResponse* response) {
  return Handle(ctx, kDeleteSubject, Role::kAdmin, response,
                [&] { return core_->DeleteSubject(*request); });
}

grpc::ServerUnaryReactor* SimilarityService::GetModelInfo(grpc::CallbackServerContext* ctx,
                                                          const v1::GetModelInfoRequest* /*request*/,
                                                          v1::ModelInfo* response) {
  return Handle(ctx, kGetModelInfo, Role::kReader, response, [&] { return core_->GetModelInfo(); });
}

}  // namespace srn
