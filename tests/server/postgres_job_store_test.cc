// The training jobs of servers and trainers sharing a real PostgreSQL database
// (tests/testing/scratch_postgres.h): each queued job is claimed once, however many trainers ask
// at once; a trainer's records hold only while it heartbeats; cancellation reaches it.

#include "server/postgres_job_store.h"

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/scratch_postgres.h"

namespace srn {
namespace {

using ::testing::HasSubstr;

class PostgresJobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    postgres_ = testing::ScratchPostgres::Start(&why);
    if (postgres_ != nullptr) uri_ = postgres_->NewDatabase(&why);
    if (uri_.empty()) {
      if (testing::PostgresRequired()) FAIL() << why;
      GTEST_SKIP() << "PostgreSQL job store not tested: " << why;
    }
  }

  std::unique_ptr<PostgresJobStore> Open() {
    absl::StatusOr<std::unique_ptr<PostgresJobStore>> store = PostgresJobStore::Open(uri_);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  static v1::Job NewJob(const std::string& description) {
    v1::Job job;
    job.mutable_spec()->set_description(description);
    return job;
  }

  std::unique_ptr<testing::ScratchPostgres> postgres_;
  std::string uri_;
};

TEST_F(PostgresJobStoreTest, EachQueuedJobIsClaimedByOneTrainer) {
  std::unique_ptr<PostgresJobStore> server = Open();
  ASSERT_NE(server, nullptr);
  v1::DatasetRef dataset;
  dataset.set_path("frames.csv");
  constexpr int kJobs = 40;
  for (int i = 1; i <= kJobs; ++i) {
    v1::Job job = NewJob("j");
    ASSERT_TRUE(server->Create(&job, dataset).ok());
    EXPECT_EQ(job.job_id(), "job-" + std::to_string(i));
    EXPECT_EQ(job.state(), v1::JOB_STATE_QUEUED);
  }
  // Four trainers, each on its own connection, claim until the queue is empty.
  constexpr int kTrainers = 4;
  std::vector<std::vector<std::string>> claimed(kTrainers);
  std::vector<std::thread> threads;
  for (int t = 0; t < kTrainers; ++t) {
    threads.emplace_back([&, t] {
      std::unique_ptr<PostgresJobStore> store = Open();
      if (store == nullptr) return;
      for (;;) {
        absl::StatusOr<std::optional<PostgresJobStore::Claimed>> c =
            store->Claim("t" + std::to_string(t), 60);
        ASSERT_TRUE(c.ok()) << c.status();
        if (!c->has_value()) return;
        EXPECT_EQ((*c)->job.state(), v1::JOB_STATE_RUNNING);
        EXPECT_GT((*c)->job.started_unix_ms(), 0);
        EXPECT_EQ((*c)->dataset.path(), "frames.csv");
        claimed[t].push_back((*c)->job.job_id());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::map<std::string, int> times;
  for (const auto& ids : claimed) {
    for (const std::string& id : ids) ++times[id];
  }
  EXPECT_EQ(times.size(), static_cast<size_t>(kJobs));
  for (const auto& [id, n] : times) EXPECT_EQ(n, 1) << id;
  EXPECT_EQ(server->List(/*active_only=*/true)->jobs_size(), kJobs);  // all running
  EXPECT_EQ(server->Get("job-1")->state(), v1::JOB_STATE_RUNNING);
}

TEST_F(PostgresJobStoreTest, ATrainerHoldsItsJobOnlyWhileItHeartbeats) {
  std::unique_ptr<PostgresJobStore> server = Open();
  std::unique_ptr<PostgresJobStore> trainer = Open();
  ASSERT_NE(server, nullptr);
  ASSERT_NE(trainer, nullptr);
  v1::Job job = NewJob("slow");
  ASSERT_TRUE(server->Create(&job, v1::DatasetRef()).ok());
  absl::StatusOr<std::optional<PostgresJobStore::Claimed>> c = trainer->Claim("t1", 0.5);
  ASSERT_TRUE(c.ok() && c->has_value());
  v1::Job running = (*c)->job;
  int64_t version = 0;
  ASSERT_TRUE(server->Get(running.job_id(), &version).ok());

  // Heartbeats keep it; each records the job and counts as a change.
  for (int i = 0; i < 4; ++i) {
    running.mutable_progress()->set_epoch(i + 1);
    absl::StatusOr<bool> cancel = trainer->Record(running, "t1");
    ASSERT_TRUE(cancel.ok()) << cancel.status();
    EXPECT_FALSE(*cancel);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    EXPECT_EQ(*server->Interrupt(), 0);
  }
  int64_t later = 0;
  EXPECT_EQ(server->Get(running.job_id(), &later)->progress().epoch(), 4);
  EXPECT_GT(later, version);
  // Another trainer cannot record it.
  EXPECT_EQ(trainer->Record(running, "t2").status().code(), absl::StatusCode::kAborted);

  // Cancelled by a server: the trainer learns it at its next heartbeat.
  absl::StatusOr<v1::Job> cancelled = server->Cancel(running.job_id());
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->state(), v1::JOB_STATE_RUNNING);
  EXPECT_TRUE(*trainer->Record(running, "t1"));

  // Silent for longer than it promised: the job ends, and the trainer cannot take it back.
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  EXPECT_EQ(*server->Interrupt(), 1);
  const v1::Job ended = *server->Get(running.job_id());
  EXPECT_EQ(ended.state(), v1::JOB_STATE_INTERRUPTED);
  EXPECT_THAT(ended.reason(), HasSubstr("trainer 't1' sent no heartbeat for 1 s"));
  EXPECT_GT(ended.finished_unix_ms(), 0);
  absl::StatusOr<bool> lost = trainer->Record(running, "t1");
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(lost.status().message(), HasSubstr("is no longer running on trainer 't1'"));
  EXPECT_EQ(*server->Interrupt(), 0);
  EXPECT_EQ(server->Cancel(running.job_id()).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(PostgresJobStoreTest, AQueuedJobCancelsAtOnceAndIsNeverClaimed) {
  std::unique_ptr<PostgresJobStore> store = Open();
  ASSERT_NE(store, nullptr);
  v1::Job job = NewJob("x");
  ASSERT_TRUE(store->Create(&job, v1::DatasetRef()).ok());
  absl::StatusOr<v1::Job> cancelled = store->Cancel(job.job_id());
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(cancelled->reason(), "cancelled by request before it started");
  EXPECT_FALSE(store->Claim("t1", 60)->has_value());
  EXPECT_EQ(store->List(true)->jobs_size(), 0);
  EXPECT_EQ(store->List(false)->jobs_size(), 1);
  EXPECT_EQ(store->Get("job-9").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->Cancel("nonsense").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace srn
