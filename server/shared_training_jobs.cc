#include "server/shared_training_jobs.h"

#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/clock.h"
#include "base/status_macros.h"
#include "server/training_spec.h"

namespace srn {

absl::StatusOr<v1::Job> SharedTrainingJobs::StartJob(const v1::StartJobRequest& request) {
  SRN_ASSIGN_OR_RETURN(v1::TrainingSpec spec, CompleteTrainingSpec(request.spec()));
  v1::Job job;
  if (!options_.data_dir.empty()) {
    SRN_ASSIGN_OR_RETURN(DataDirDataset dataset,
                         ResolveDatasetRef(options_.data_dir, request.dataset()));
    job.set_dataset(dataset.description);
  } else {
    // The trainer that claims it says what it is.
    job.set_dataset(absl::StrCat(request.dataset().path(), " (checked by the trainer)"));
  }
  job.set_created_unix_ms(NowUnixMs());
  job.mutable_progress()->set_max_epochs(spec.max_epochs());
  *job.mutable_spec() = std::move(spec);
  SRN_RETURN_IF_ERROR(jobs_->Create(&job, request.dataset()));
  return job;
}

absl::StatusOr<v1::Job> SharedTrainingJobs::StartUploadJob(const v1::TrainingSpec&,
                                                           UploadedDataset) {
  return absl::FailedPreconditionError(
      "a server on a PostgreSQL store does not take uploads for training: its trainers run only "
      "what they can read themselves; put the dataset under the trainers' --data_dir and call "
      "StartJob (srnctl train)");
}

void SharedTrainingJobs::EndAbandoned(PostgresJobStore* jobs, ServerMetrics* metrics) {
  absl::StatusOr<int64_t> ended = jobs->Interrupt();
  if (!ended.ok()) {
    std::cerr << "srn-server: cannot look for jobs whose trainer stopped: "
              << ended.status().message() << "\n";
  } else if (*ended > 0) {
    std::cerr << "srn-server: ended " << *ended << " job(s) whose trainer stopped heartbeating\n";
    if (metrics != nullptr) {
      metrics->JobsAbandoned(*ended);
      metrics->JobFinished("interrupted", *ended);
    }
  }
}

absl::StatusOr<v1::Job> SharedTrainingJobs::GetJob(const std::string& job_id) {
  EndAbandoned(jobs_, metrics_);
  return jobs_->Get(job_id);
}

absl::StatusOr<v1::ListJobsResponse> SharedTrainingJobs::ListJobs(bool active_only) {
  EndAbandoned(jobs_, metrics_);
  return jobs_->List(active_only);
}

absl::StatusOr<v1::Job> SharedTrainingJobs::CancelJob(const std::string& job_id) {
  EndAbandoned(jobs_, metrics_);
  return jobs_->Cancel(job_id);
}

absl::StatusOr<v1::Job> SharedTrainingJobs::WaitForChange(const std::string& job_id, int64_t* seen,
                                                          absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  EndAbandoned(jobs_, metrics_);
  for (;;) {
    int64_t version = 0;
    SRN_ASSIGN_OR_RETURN(v1::Job job, jobs_->Get(job_id, &version));
    if (version != *seen || absl::Now() >= deadline) {
      *seen = version;
      return job;
    }
    absl::SleepFor(std::min(absl::Milliseconds(100), deadline - absl::Now()));
  }
}

}  // namespace srn
