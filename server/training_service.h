#ifndef SRN_SERVER_TRAINING_SERVICE_H_
#define SRN_SERVER_TRAINING_SERVICE_H_

#include <atomic>

#include "grpcpp/grpcpp.h"
#include "server/auth.h"
#include "server/model_registry.h"
#include "server/training_worker.h"
#include "srn/v1/training.grpc.pb.h"

namespace srn {

// The gRPC faces of the training worker and the model registry (proto/srn/v1/training.proto):
// every call needs the admin role, checks readiness and delegates. Null worker and registry mean
// the server runs without --model_dir: every call then fails with FAILED_PRECONDITION. These
// are synchronous services (their calls are rare and WatchJob blocks a thread while it waits),
// so they never take threads from the similarity service's callback path. Thread-safe; all
// pointers must outlive the services.
class TrainingService final : public v1::TrainingService::Service {
 public:
  static constexpr char kServiceName[] = "srn.v1.TrainingService";
  TrainingService(TrainingWorker* worker, const TokenAuth* auth, const TrainingOptions& options);

  void SetReady(bool ready) { ready_.store(ready); }
  void StartDraining() { draining_.store(true); }

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
  grpc::Status Check(grpc::ServerContext* ctx, const char* method) const;

  TrainingWorker* const worker_;
  const TokenAuth* const auth_;
  const TrainingOptions options_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> draining_{false};
};

class ModelRegistryService final : public v1::ModelRegistry::Service {
 public:
  static constexpr char kServiceName[] = "srn.v1.ModelRegistry";
  ModelRegistryService(ModelRegistry* registry, const TokenAuth* auth);

  void SetReady(bool ready) { ready_.store(ready); }
  void StartDraining() { draining_.store(true); }

  grpc::Status ListModels(grpc::ServerContext* ctx, const v1::ListModelsRequest* request,
                          v1::ListModelsResponse* response) override;
  grpc::Status ActivateModel(grpc::ServerContext* ctx, const v1::ActivateModelRequest* request,
                             v1::ActivateModelResponse* response) override;
  grpc::Status RollbackModel(grpc::ServerContext* ctx, const v1::RollbackModelRequest* request,
                             v1::ActivateModelResponse* response) override;

 private:
  grpc::Status Check(grpc::ServerContext* ctx, const char* method) const;

  ModelRegistry* const registry_;
  const TokenAuth* const auth_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> draining_{false};
};

}  // namespace srn

#endif  // SRN_SERVER_TRAINING_SERVICE_H_
