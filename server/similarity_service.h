#ifndef SRN_SERVER_SIMILARITY_SERVICE_H_
#define SRN_SERVER_SIMILARITY_SERVICE_H_

#include <string>

#include "base/task_threads.h"
#include "grpcpp/grpcpp.h"
#include "server/auth.h"
#include "server/server_metrics.h"
#include "server/service_edge.h"
#include "server/similarity_core.h"
#include "srn/v1/similarity.grpc.pb.h"

namespace srn {

// The gRPC face of SimilarityCore: each call goes through the ServiceEdge (readiness, deadline,
// role, status conversion, metrics) to the core. Holds no state of its own beyond pointers;
// thread-safe.
class SimilarityService final : public v1::SimilarityService::CallbackService {
 public:
  static constexpr char kServiceName[] = "srn.v1.SimilarityService";
  // Its RPCs, for ServerMetrics.
  static const std::vector<RpcMethod>& Methods();

  // All pointers must outlive the service.
  SimilarityService(SimilarityCore* core, const TokenAuth* auth, ServerMetrics* metrics);

  // Until ready, every call gets UNAVAILABLE ("starting"); after draining starts, UNAVAILABLE
  // ("shutting down").
  void SetReady(bool ready) { edge_.SetReady(ready); }
  void StartDraining() { edge_.StartDraining(); }

  grpc::ServerUnaryReactor* Embed(grpc::CallbackServerContext* ctx, const v1::EmbedRequest* request,
                                  v1::EmbedResponse* response) override;
  grpc::ServerUnaryReactor* Similarity(grpc::CallbackServerContext* ctx,
                                       const v1::SimilarityRequest* request,
                                       v1::SimilarityResponse* response) override;
  grpc::ServerUnaryReactor* Enroll(grpc::CallbackServerContext* ctx,
                                   const v1::EnrollRequest* request,
                                   v1::EnrollResponse* response) override;
  grpc::ServerUnaryReactor* Verify(grpc::CallbackServerContext* ctx,
                                   const v1::VerifyRequest* request,
                                   v1::VerifyResponse* response) override;
  grpc::ServerUnaryReactor* Identify(grpc::CallbackServerContext* ctx,
                                     const v1::IdentifyRequest* request,
                                     v1::IdentifyResponse* response) override;
  grpc::ServerUnaryReactor* GetSubject(grpc::CallbackServerContext* ctx,
                                       const v1::GetSubjectRequest* request,
                                       v1::Subject* response) override;
  grpc::ServerUnaryReactor* ListSubjects(grpc::CallbackServerContext* ctx,
                                         const v1::ListSubjectsRequest* request,
                                         v1::ListSubjectsResponse* response) override;
  grpc::ServerUnaryReactor* DeleteSubject(grpc::CallbackServerContext* ctx,
                                          const v1::DeleteSubjectRequest* request,
                                          v1::DeleteSubjectResponse* response) override;
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* ctx,
                                         const v1::GetModelInfoRequest* request,
                                         v1::ModelInfo* response) override;

 private:
  template <typename Response, typename Fn>
  grpc::ServerUnaryReactor* Handle(grpc::CallbackServerContext* ctx, int method, Role required,
                                   Response* response, Fn&& fn);

  SimilarityCore* const core_;
  ServiceEdge edge_;
  // Enroll waits for its durable write: it runs here, not on gRPC's callback threads (which must
  // not block), so that many enrollments can wait at once and the store can commit them
  // together. Destroyed after the server, which waits for the calls, has stopped.
  TaskThreads writers_{kWriterThreads};
  static constexpr int kWriterThreads = 16;
};

}  // namespace srn

#endif  // SRN_SERVER_SIMILARITY_SERVICE_H_
