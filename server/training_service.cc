#include "server/training_service.h"

#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace srn {
namespace {

enum Method { kStartJob, kUploadAndTrain, kGetJob, kListJobs, kCancelJob, kWatchJob };

}  // namespace

const std::vector<RpcMethod>& TrainingService::Methods() {
  static const std::vector<RpcMethod>* methods = new std::vector<RpcMethod>{
      {"StartJob"}, {"UploadAndTrain", "client_stream"}, {"GetJob"}, {"ListJobs"},
      {"CancelJob"}, {"WatchJob", "server_stream"}};
  return *methods;
}

TrainingService::TrainingService(TrainingJobs* jobs, const TokenAuth* auth,
                                 const TrainingOptions& options, ServerMetrics* metrics)
    : jobs_(jobs), options_(options), edge_(kServiceName, Methods(), auth, metrics) {}

absl::Status TrainingService::Configured() const {
  if (jobs_ != nullptr) return absl::OkStatus();
  return absl::FailedPreconditionError(
      "training needs a model registry: run the server with --model_dir (on a SQLite store), or "
      "on a PostgreSQL store with trainers (srn-server --role=trainer)");
}

grpc::Status TrainingService::StartJob(grpc::ServerContext* ctx, const v1::StartJobRequest* request,
                                       v1::Job* response) {
  return edge_.Call(*ctx, kStartJob, Role::kAdmin, response, [&]() -> absl::StatusOr<v1::Job> {
    SRN_RETURN_IF_ERROR(Configured());
    return jobs_->StartJob(*request);
  });
}

grpc::Status TrainingService::UploadAndTrain(grpc::ServerContext* ctx,
                                             grpc::ServerReader<v1::UploadAndTrainRequest>* reader,
                                             v1::Job* response) {
  return edge_.Call(*ctx, kUploadAndTrain, Role::kAdmin, response,
                    [&]() -> absl::StatusOr<v1::Job> {
    SRN_RETURN_IF_ERROR(Configured());
    UploadedDataset upload(options_.max_upload_series, options_.limits);
    v1::TrainingSpec spec;
    v1::UploadAndTrainRequest message;
    bool first = true;
    while (reader->Read(&message)) {
      if (first) {
        if (!message.has_spec()) {
          return absl::InvalidArgumentError(
              "the first message of an upload must carry the training spec");
        }
        spec = message.spec();
        first = false;
      } else if (message.has_spec()) {
        return absl::InvalidArgumentError(
            "only the first message of an upload may carry the training spec");
      }
      for (const v1::LabelledSeries& series : message.series()) {
        SRN_RETURN_IF_ERROR(upload.Add(series));
      }
    }
    if (ctx->IsCancelled()) return absl::CancelledError("the upload was cancelled");
    if (first) return absl::InvalidArgumentError("empty upload: no training spec");
    return jobs_->StartUploadJob(spec, std::move(upload));
  });
}

grpc::Status TrainingService::GetJob(grpc::ServerContext* ctx, const v1::GetJobRequest* request,
                                     v1::Job* response) {
  return edge_.Call(*ctx, kGetJob, Role::kAdmin, response, [&]() -> absl::StatusOr<v1::Job> {
    SRN_RETURN_IF_ERROR(Configured());
    return jobs_->GetJob(request->job_id());
  });
}

grpc::Status TrainingService::ListJobs(grpc::ServerContext* ctx, const v1::ListJobsRequest* request,
                                       v1::ListJobsResponse* response) {
  return edge_.Call(*ctx, kListJobs, Role::kAdmin, response,
                    [&]() -> absl::StatusOr<v1::ListJobsResponse> {
    SRN_RETURN_IF_ERROR(Configured());
    return jobs_->ListJobs(request->active_only());
  });
}

grpc::Status TrainingService::CancelJob(grpc::ServerContext* ctx,
                                        const v1::CancelJobRequest* request, v1::Job* response) {
  return edge_.Call(*ctx, kCancelJob, Role::kAdmin, response, [&]() -> absl::StatusOr<v1::Job> {
    SRN_RETURN_IF_ERROR(Configured());
    return jobs_->CancelJob(request->job_id());
  });
}

grpc::Status TrainingService::WatchJob(grpc::ServerContext* ctx, const v1::WatchJobRequest* request,
                                       grpc::ServerWriter<v1::Job>* writer) {
  return edge_.Call(*ctx, kWatchJob, Role::kAdmin, [&]() -> absl::Status {
    SRN_RETURN_IF_ERROR(Configured());
    int64_t seen = -1;
    int64_t written = -2;
    for (;;) {
      if (ctx->IsCancelled()) return absl::CancelledError("the watcher went away");
      if (edge_.draining()) return absl::UnavailableError("the server is shutting down");
      SRN_ASSIGN_OR_RETURN(const v1::Job job,
                           jobs_->WaitForChange(request->job_id(), &seen, absl::Seconds(1)));
      if (seen != written) {
        if (!writer->Write(job)) return absl::OkStatus();  // the client went away
        written = seen;
      }
      if (TrainingQueue::IsTerminal(job.state())) return absl::OkStatus();
      // At most ~5 updates a second: progress changes with every mini-batch.
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  });
}

}  // namespace srn
