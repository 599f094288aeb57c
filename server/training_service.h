#ifndef SRN_SERVER_TRAINING_SERVICE_H_
#define SRN_SERVER_TRAINING_SERVICE_H_

#include <vector>

#include "grpcpp/grpcpp.h"
#include "server/auth.h"
#include "server/server_metrics.h"
#include "server/service_edge.h"
#include "server/training_jobs.h"
#include "server/training_worker.h"
#include "srn/v1/training.grpc.pb.h"

namespace srn {

// The gRPC face of training jobs (srn.v1.TrainingService in proto/srn/v1/training.proto): every
// call goes through the ServiceEdge (admin role, readiness, deadline, metrics) and delegates to
// the server's jobs (training_jobs.h). Null jobs mean the server runs on a SQLite store without
// --model_dir: every call then fails with FAILED_PRECONDITION. A synchronous service (its calls
// are rare and WatchJob blocks a thread while it waits), so it never takes threads from the
// similarity service's callback path. Thread-safe; all pointers must outlive the service.
class TrainingService final : public v1::TrainingService::Service {
 public:
  static constexpr char kServiceName[] = "srn.v1.TrainingService";
  // Its RPCs, for ServerMetrics.
  static const std::vector<RpcMethod>& Methods();
  TrainingService(TrainingJobs* jobs, const TokenAuth* auth, const TrainingOptions& options,
                  ServerMetrics* metrics);

  void SetReady(bool ready) { edge_.SetReady(ready); }
  void StartDraining() { edge_.StartDraining(); }

  grpc::Status StartJob(grpc::ServerContext* ctx, const v1::StartJobRequest* request,
                        v1::Job* response) override;
  grpc::Status UploadAndTrain(grpc::ServerContext* ctx,
                              grpc::ServerReader<v1::UploadAndTrainRequest>* reader,
                              v1::Job* response) override;
  grpc::Status GetJob(grpc::ServerContext* ctx, const v1::GetJobRequest* request,
                      v1::Job* response) override;
  grpc::Status ListJobs(grpc::ServerContext* ctx, const v1::ListJobsRequest* request,
                        v1::ListJobsResponse* response) override;
  grpc::Status CancelJob(grpc::ServerContext* ctx, const v1::CancelJobRequest* request,
                         v1::Job* response) override;
  grpc::Status WatchJob(grpc::ServerContext* ctx, const v1::WatchJobRequest* request,
                        grpc::ServerWriter<v1::Job>* writer) override;

 private:
  absl::Status Configured() const;

  TrainingJobs* const jobs_;
  const TrainingOptions options_;
  ServiceEdge edge_;
};

}  // namespace srn

#endif  // SRN_SERVER_TRAINING_SERVICE_H_
