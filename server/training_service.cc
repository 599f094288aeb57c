#include "server/training_service.h"

#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "server/grpc_auth.h"
#include "server/grpc_status.h"

namespace srn {
namespace {

// What both services check before doing anything: up, not draining, an admin caller, configured.
grpc::Status CheckCall(grpc::ServerContext* ctx, const TokenAuth& auth, bool ready, bool draining,
                       bool configured, const char* method) {
  if (draining) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down");
  if (!ready) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is starting");
  absl::StatusOr<Role> role = CallerRole(*ctx, auth);
  if (!role.ok()) return ToGrpcStatus(role.status());
  if (absl::Status s = TokenAuth::Authorize(*role, Role::kAdmin, method); !s.ok()) return ToGrpcStatus(s);
  if (!configured) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "training and model management need the server to run with --model_dir");
  }
  return grpc::Status::OK;
}

template <typename T>
grpc::Status Reply(absl::StatusOr<T> result, T* response) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = *std::move(result);
  return grpc::Status::OK;
}

}  // namespace

TrainingService::TrainingService(TrainingWorker* worker, const TokenAuth* auth,
                                 const TrainingOptions& options)
    : worker_(worker), auth_(auth), options_(options) {}

grpc::Status TrainingService::Check(grpc::ServerContext* ctx, const char* method) const {
  return CheckCall(ctx, *auth_, ready_.load(), draining_.load(), worker_ != nullptr, method);
}

grpc::Status TrainingService::StartJob(grpc::ServerContext* ctx, const v1::StartJobRequest* request,
                                       v1::Job* response) {
  if (grpc::Status s = Check(ctx, "StartJob"); !s.ok()) return s;
  return Reply(worker_->StartJob(*request), response);
}

grpc::Status TrainingService::UploadAndTrain(grpc::ServerContext* ctx,
                                             grpc::ServerReader<v1::UploadAndTrainRequest>* reader,
                                             v1::Job* response) {
  if (grpc::Status s = Check(ctx, "UploadAndTrain"); !s.ok()) return s;
  UploadedDataset upload(options_.max_upload_series, options_.limits);
  v1::TrainingSpec spec;
  v1::UploadAndTrainRequest message;
  bool first = true;
  while (reader->Read(&message)) {
    if (first) {
      if (!message.has_spec()) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            "the first message of an upload must carry the training spec");
      }
      spec = message.spec();
      first = false;
    } else if (message.has_spec()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "only the first message of an upload may carry the training spec");
    }
    for (const v1::LabelledSeries& series : message.series()) {
      if (absl::Status s = upload.Add(series); !s.ok()) return ToGrpcStatus(s);
    }
  }
  if (ctx->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "the upload was cancelled");
  if (first) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "empty upload: no training spec");
  return Reply(worker_->StartUploadJob(spec, std::move(upload)), response);
}

grpc::Status TrainingService::GetJob(grpc::ServerContext* ctx, const v1::GetJobRequest* request,
                                     v1::Job* response) {
  if (grpc::Status s = Check(ctx, "GetJob"); !s.ok()) return s;
  return Reply(worker_->GetJob(request->job_id()), response);
}

grpc::Status TrainingService::ListJobs(grpc::ServerContext* ctx, const v1::ListJobsRequest* request,
                                       v1::ListJobsResponse* response) {
  if (grpc::Status s = Check(ctx, "ListJobs"); !s.ok()) return s;
  *response = worker_->ListJobs(request->active_only());
  return grpc::Status::OK;
}

grpc::Status TrainingService::CancelJob(grpc::ServerContext* ctx, const v1::CancelJobRequest* request,
                                        v1::Job* response) {
  if (grpc::Status s = Check(ctx, "CancelJob"); !s.ok()) return s;
  return Reply(worker_->CancelJob(request->job_id()), response);
}

grpc::Status TrainingService::WatchJob(grpc::ServerContext* ctx, const v1::WatchJobRequest* request,
                                       grpc::ServerWriter<v1::Job>* writer) {
  if (grpc::Status s = Check(ctx, "WatchJob"); !s.ok()) return s;
  int64_t seen = -1;
  int64_t written = -2;
  for (;;) {
    if (ctx->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "the watcher went away");
    if (draining_.load()) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down");
    }
    absl::StatusOr<v1::Job> job = worker_->WaitForChange(request->job_id(), &seen, absl::Seconds(1));
    if (!job.ok()) return ToGrpcStatus(job.status());
    if (seen != written) {
      if (!writer->Write(*job)) return grpc::Status::OK;  // the client went away
      written = seen;
    }
    if (TrainingWorker::IsTerminal(job->state())) return grpc::Status::OK;
    // At most ~5 updates a second: progress changes with every mini-batch.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

ModelRegistryService::ModelRegistryService(ModelRegistry* registry, const TokenAuth* auth)
    : registry_(registry), auth_(auth) {}

grpc::Status ModelRegistryService::Check(grpc::ServerContext* ctx, const char* method) const {
  return CheckCall(ctx, *auth_, ready_.load(), draining_.load(), registry_ != nullptr, method);
}

grpc::Status ModelRegistryService::ListModels(grpc::ServerContext* ctx,
                                              const v1::ListModelsRequest* /*request*/,
                                              v1::ListModelsResponse* response) {
  if (grpc::Status s = Check(ctx, "ListModels"); !s.ok()) return s;
  *response = registry_->List();
  return grpc::Status::OK;
}

grpc::Status ModelRegistryService::ActivateModel(grpc::ServerContext* ctx,
                                                 const v1::ActivateModelRequest* request,
                                                 v1::ActivateModelResponse* response) {
  if (grpc::Status s = Check(ctx, "ActivateModel"); !s.ok()) return s;
  return Reply(registry_->Activate(request->version()), response);
}

grpc::Status ModelRegistryService::RollbackModel(grpc::ServerContext* ctx,
                                                 const v1::RollbackModelRequest* /*request*/,
                                                 v1::ActivateModelResponse* response) {
  if (grpc::Status s = Check(ctx, "RollbackModel"); !s.ok()) return s;
  return Reply(registry_->Rollback(), response);
}

}  // namespace srn
