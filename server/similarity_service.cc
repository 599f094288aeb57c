#include "server/similarity_service.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/call_cancellation.h"

namespace srn {
namespace {

enum Method { kEmbed, kSimilarity, kEnroll, kVerify, kIdentify, kGetSubject, kListSubjects,
              kDeleteSubject, kGetModelInfo };

}  // namespace

const std::vector<RpcMethod>& SimilarityService::Methods() {
  static const std::vector<RpcMethod>* methods = new std::vector<RpcMethod>{
      {"Embed"},    {"Similarity"},   {"Enroll"},        {"Verify"},      {"Identify"},
      {"GetSubject"}, {"ListSubjects"}, {"DeleteSubject"}, {"GetModelInfo"}};
  return *methods;
}

SimilarityService::SimilarityService(SimilarityCore* core, const TokenAuth* auth,
                                     ServerMetrics* metrics)
    : core_(core), edge_(kServiceName, Methods(), auth, metrics) {}

template <typename Response, typename Fn>
grpc::ServerUnaryReactor* SimilarityService::Handle(grpc::CallbackServerContext* ctx, int method,
                                                    Role required, Response* response, Fn&& fn) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(edge_.Call(*ctx, method, required, response, std::forward<Fn>(fn)));
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
  return Handle(ctx, kSimilarity, Role::kReader, response,
                [&] { return core_->Similarity(*request); });
}

grpc::ServerUnaryReactor* SimilarityService::Enroll(grpc::CallbackServerContext* ctx,
                                                    const v1::EnrollRequest* request,
                                                    v1::EnrollResponse* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  writers_.Post([this, ctx, request, response, reactor] {
    reactor->Finish(edge_.Call(*ctx, kEnroll, Role::kAdmin, response, [&] {
      return core_->Enroll(*request, CallCancellation(*ctx));
    }));
  });
  return reactor;
}

grpc::ServerUnaryReactor* SimilarityService::Verify(grpc::CallbackServerContext* ctx,
                                                    const v1::VerifyRequest* request,
                                                    v1::VerifyResponse* response) {
  return Handle(ctx, kVerify, Role::kReader, response,
                [&] { return core_->Verify(*request, CallCancellation(*ctx)); });
}

grpc::ServerUnaryReactor* SimilarityService::Identify(grpc::CallbackServerContext* ctx,
                                                      const v1::IdentifyRequest* request,
                                                      v1::IdentifyResponse* response) {
  return Handle(ctx, kIdentify, Role::kReader, response,
                [&] { return core_->Identify(*request, CallCancellation(*ctx)); });
}

grpc::ServerUnaryReactor* SimilarityService::GetSubject(grpc::CallbackServerContext* ctx,
                                                        const v1::GetSubjectRequest* request,
                                                        v1::Subject* response) {
  return Handle(ctx, kGetSubject, Role::kReader, response,
                [&] { return core_->GetSubject(*request); });
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

grpc::ServerUnaryReactor* SimilarityService::GetModelInfo(
    grpc::CallbackServerContext* ctx, const v1::GetModelInfoRequest* /*request*/,
    v1::ModelInfo* response) {
  return Handle(ctx, kGetModelInfo, Role::kReader, response, [&] { return core_->GetModelInfo(); });
}

}  // namespace srn
