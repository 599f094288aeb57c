#include "server/training_queue.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/scratch_dir.h"

namespace srn {
namespace {

using StopReason = TrainingQueue::StopReason;

class TrainingQueueTest : public testing::ScratchDirTest {
 protected:
  // Opens the store (":memory:" or a file in the test's folder) and a queue on it.
  void Open(const std::string& store = ":memory:", bool start = true) {
    queue_.reset();
    absl::StatusOr<std::unique_ptr<JobStore>> jobs =
        JobStore::Open(store == ":memory:" ? store : dir() + "/" + store);
    ASSERT_TRUE(jobs.ok()) << jobs.status();
    store_ = *std::move(jobs);
    queue_ = std::make_unique<TrainingQueue>(store_.get(), nullptr);
    if (start) {
      ASSERT_TRUE(queue_->Start().ok());
    }
  }

  static v1::Job NewJob(int max_epochs = 3) {
    v1::Job job;
    job.mutable_spec()->set_max_epochs(max_epochs);
    job.set_dataset("test data");
    return job;
  }

  // The job as the store records it.
  v1::Job Stored(const std::string& job_id) {
    absl::StatusOr<std::vector<v1::Job>> all = store_->LoadAll();
    EXPECT_TRUE(all.ok()) << all.status();
    for (const v1::Job& job : *all) {
      if (job.job_id() == job_id) return job;
    }
    ADD_FAILURE() << "no stored " << job_id;
    return v1::Job();
  }

  std::unique_ptr<JobStore> store_;
  std::unique_ptr<TrainingQueue> queue_;
};

TEST_F(TrainingQueueTest, AcceptsJobsOnlyWhileStarted) {
  Open(":memory:", /*start=*/false);
  EXPECT_EQ(queue_->Enqueue(NewJob(), JobData()).status().code(), absl::StatusCode::kUnavailable);
  ASSERT_TRUE(queue_->Start().ok());
  EXPECT_EQ(queue_->Start().code(), absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<v1::Job> job = queue_->Enqueue(NewJob(7), JobData());
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->job_id(), "job-1");
  EXPECT_EQ(job->state(), v1::JOB_STATE_QUEUED);
  EXPECT_GT(job->created_unix_ms(), 0);
  EXPECT_EQ(job->progress().max_epochs(), 7);
  EXPECT_EQ(Stored("job-1").state(), v1::JOB_STATE_QUEUED);
  EXPECT_TRUE(queue_->Stop());
  EXPECT_FALSE(queue_->Stop());
  EXPECT_EQ(queue_->Enqueue(NewJob(), JobData()).status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(TrainingQueueTest, ReadsAndListsJobsNewestFirst) {
  Open();
  ASSERT_TRUE(queue_->Enqueue(NewJob(), JobData()).ok());
  ASSERT_TRUE(queue_->Enqueue(NewJob(), JobData()).ok());
  EXPECT_EQ(queue_->Get("job-2")->job_id(), "job-2");
  EXPECT_EQ(queue_->Get("job-9").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(queue_->Get("nonsense").status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(queue_->Cancel("job-1").ok());
  const v1::ListJobsResponse all = queue_->List(false);
  ASSERT_EQ(all.jobs_size(), 2);
  EXPECT_EQ(all.jobs(0).job_id(), "job-2");
  EXPECT_EQ(all.jobs(1).job_id(), "job-1");
  const v1::ListJobsResponse active = queue_->List(true);
  ASSERT_EQ(active.jobs_size(), 1);
  EXPECT_EQ(active.jobs(0).job_id(), "job-2");
}

TEST_F(TrainingQueueTest, RunnersTakeJobsInOrderAndMarkThemRunning) {
  Open();
  JobData data;
  data.upload = Dataset{"upload", {"a"}, {}};
  ASSERT_TRUE(queue_->Enqueue(NewJob(), std::move(data)).ok());
  ASSERT_TRUE(queue_->Enqueue(NewJob(), JobData()).ok());
  std::shared_ptr<TrainingQueue::Entry> first = queue_->Next();
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(queue_->Snapshot(first.get()).job_id(), "job-1");
  EXPECT_EQ(queue_->Snapshot(first.get()).state(), v1::JOB_STATE_RUNNING);
  EXPECT_GT(queue_->Snapshot(first.get()).started_unix_ms(), 0);
  EXPECT_TRUE(first->data.upload.has_value());  // the runner gets the job's data
  EXPECT_EQ(Stored("job-1").state(), v1::JOB_STATE_RUNNING);
  std::shared_ptr<TrainingQueue::Entry> second = queue_->Next();
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(queue_->Snapshot(second.get()).job_id(), "job-2");

  queue_->Finish(first.get(), v1::JOB_STATE_FAILED, "no luck");
  const v1::Job failed = *queue_->Get("job-1");
  EXPECT_EQ(failed.state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(failed.reason(), "no luck");
  EXPECT_GT(failed.finished_unix_ms(), 0);
  EXPECT_EQ(Stored("job-1").reason(), "no luck");
}

TEST_F(TrainingQueueTest, CancellingAQueuedJobEndsItAtOnce) {
  Open();
  ASSERT_TRUE(queue_->Enqueue(NewJob(), JobData()).ok());
  ASSERT_TRUE(queue_->Enqueue(NewJob(), JobData()).ok());
  absl::StatusOr<v1::Job> cancelled = queue_->Cancel("job-1");
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(cancelled->reason(), "cancelled by request before it started");
  EXPECT_EQ(Stored("job-1").state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(queue_->Cancel("job-1").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(queue_->Cancel("job-9").status().code(), absl::StatusCode::kNotFound);
  std::shared_ptr<TrainingQueue::Entry> next = queue_->Next();  // job-1 left the queue
  ASSERT_NE(next, nullptr);
  EXPECT_EQ(queue_->Snapshot(next.get()).job_id(), "job-2");
}

TEST_F(TrainingQueueTest, CancellingARunningJobAsksItsRunnerToStop) {
  Open();
  ASSERT_TRUE(queue_->Enqueue(NewJob(), JobData()).ok());
  std::shared_ptr<TrainingQueue::Entry> entry = queue_->Next();
  ASSERT_NE(entry, nullptr);
  absl::StatusOr<v1::Job> cancelling = queue_->Cancel("job-1");
  ASSERT_TRUE(cancelling.ok());
  EXPECT_EQ(cancelling->state(), v1::JOB_STATE_RUNNING);  // until its runner stops
  EXPECT_TRUE(entry->cancel.load());
  queue_->FinishStopped(entry.get());
  const v1::Job job = *queue_->Get("job-1");
  EXPECT_EQ(job.state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(job.reason(), "cancelled by request while running");
}

TEST_F(TrainingQueueTest, DivergenceOutranksACancellation) {
  Open();
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(queue_->Enqueue(NewJob(), JobData()).ok());
  // Cancelled first, then diverged: it failed.
  std::shared_ptr<TrainingQueue::Entry> first = queue_->Next();
  ASSERT_TRUE(queue_->Cancel("job-1").ok());
  queue_->RequestStop(first.get(), StopReason::kDiverged, "diverged at epoch 2");
  queue_->FinishStopped(first.get());
  EXPECT_EQ(queue_->Get("job-1")->state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(queue_->Get("job-1")->reason(), "diverged at epoch 2");
  // Diverged first, then cancelled: it still failed.
  std::shared_ptr<TrainingQueue::Entry> second = queue_->Next();
  queue_->RequestStop(second.get(), StopReason::kDiverged, "diverged at epoch 1");
  EXPECT_TRUE(second->cancel.load());
  ASSERT_TRUE(queue_->Cancel("job-2").ok());
  queue_->FinishStopped(second.get());
  EXPECT_EQ(queue_->Get("job-2")->state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(queue_->Get("job-2")->reason(), "diverged at epoch 1");
}

TEST_F(TrainingQueueTest, StoppingInterruptsRunningJobsAndReleasesRunners) {
  Open();
  ASSERT_TRUE(queue_->Enqueue(NewJob(), JobData()).ok());
  std::shared_ptr<TrainingQueue::Entry> running = queue_->Next();
  ASSERT_NE(running, nullptr);
  std::shared_ptr<TrainingQueue::Entry> waited;
  bool returned = false;
  std::thread runner([&] {
    waited = queue_->Next();  // nothing queued: waits until the queue stops
    returned = true;
  });
  EXPECT_TRUE(queue_->Stop());
  runner.join();
  EXPECT_TRUE(returned);
  EXPECT_EQ(waited, nullptr);
  EXPECT_TRUE(running->cancel.load());
  queue_->FinishStopped(running.get());
  EXPECT_EQ(queue_->Get("job-1")->state(), v1::JOB_STATE_INTERRUPTED);
  EXPECT_EQ(queue_->Get("job-1")->reason(), "the server shut down while the job was running");
}

TEST_F(TrainingQueueTest, WatchersWakeOnChanges) {
  Open();
  ASSERT_TRUE(queue_->Enqueue(NewJob(), JobData()).ok());
  int64_t seen = -1;
  absl::StatusOr<v1::Job> job = queue_->WaitForChange("job-1", &seen, absl::Seconds(10));
  ASSERT_TRUE(job.ok());  // changed since -1: at once
  const int64_t first = seen;
  job = queue_->WaitForChange("job-1", &seen, absl::Milliseconds(10));
  ASSERT_TRUE(job.ok());  // unchanged: after the timeout, same number
  EXPECT_EQ(seen, first);
  std::shared_ptr<TrainingQueue::Entry> entry = queue_->Next();
  job = queue_->WaitForChange("job-1", &seen, absl::Seconds(10));
  EXPECT_EQ(job->state(), v1::JOB_STATE_RUNNING);
  EXPECT_GT(seen, first);
  const int64_t running = seen;
  std::thread updater([&] {
    queue_->Update(entry.get(), [](v1::Job* job) {
      job->mutable_progress()->set_epoch(2);
    });
  });
  job = queue_->WaitForChange("job-1", &seen, absl::Seconds(10));
  updater.join();
  EXPECT_EQ(job->progress().epoch(), 2);
  EXPECT_GT(seen, running);
  // A quiet change is visible but wakes nobody.
  const int64_t before = seen;
  queue_->Update(
      entry.get(), [](v1::Job* job) { job->set_model_version(5); }, /*quiet=*/true);
  EXPECT_EQ(queue_->Snapshot(entry.get()).model_version(), 5);
  job = queue_->WaitForChange("job-1", &seen, absl::Milliseconds(10));
  EXPECT_EQ(seen, before);
  EXPECT_EQ(queue_->WaitForChange("job-9", &seen, absl::Milliseconds(1)).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(TrainingQueueTest, RestartMarksUnfinishedJobsInterrupted) {
  Open("jobs.db");
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(queue_->Enqueue(NewJob(), JobData()).ok());
  ASSERT_NE(queue_->Next(), nullptr);  // job-1 running, job-2 queued
  ASSERT_TRUE(queue_->Cancel("job-3").ok());
  // A crash: the queue goes away without ending its jobs.
  Open("jobs.db");
  for (const std::string id : {"job-1", "job-2"}) {
    const v1::Job job = *queue_->Get(id);
    EXPECT_EQ(job.state(), v1::JOB_STATE_INTERRUPTED) << id;
    EXPECT_EQ(job.reason(), "server restarted while the job was running") << id;
    EXPECT_EQ(Stored(id).state(), v1::JOB_STATE_INTERRUPTED) << id;
  }
  EXPECT_EQ(queue_->Get("job-3")->state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(queue_->List(true).jobs_size(), 0);
  EXPECT_EQ(queue_->Enqueue(NewJob(), JobData())->job_id(), "job-4");  // numbering continues
}

}  // namespace
}  // namespace srn
