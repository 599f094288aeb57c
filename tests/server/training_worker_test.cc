#include "server/training_worker.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "model/weights/weights_file.h"
#include "tests/testing/scratch_dir.h"
#include "tests/testing/synthetic_data.h"
#include "tests/testing/test_models.h"

namespace srn {
namespace {

constexpr int kDims = 2;

class TrainingWorkerTest : public testing::ScratchDirTest {
 protected:
  void SetUp() override {
    ScratchDirTest::SetUp();
    data_dir_ = dir() + "/data";
    std::filesystem::create_directories(data_dir_);
    WriteCsvDataset("sines/manifest.csv", testing::MakeSineDataset(4, 20, kDims, 20, 30, 3));
    const std::string seed_path = dir() + "/seed.srnw";
    ASSERT_TRUE(SaveModel(*testing::RandomModel("srn-a", kDims, 8, 1), seed_path).ok());
    auto registry = OpenDirectoryModelRegistry(dir() + "/models");
    ASSERT_TRUE(registry.ok()) << registry.status();
    registry_ = *std::move(registry);
    ASSERT_TRUE(registry_->ImportInitial(seed_path).ok());
    auto model = registry_->LoadVersion(1);
    ASSERT_TRUE(model.ok());
    core_ =
        std::make_unique<SimilarityCore>(*model, NewInMemorySubjectStore(), CoreOptions(), nullptr);
    ASSERT_TRUE(core_->Recover().ok());
    manager_ = std::make_unique<ModelManager>(registry_.get(), core_.get(), nullptr);
    options_.data_dir = data_dir_;
    options_.threads = 1;
    options_.max_jobs = 1;
  }

  void TearDown() override {
    worker_.reset();
    ScratchDirTest::TearDown();
  }

  // Writes each series as CSV and a manifest naming them, under the data directory.
  void WriteCsvDataset(const std::string& manifest, const Dataset& data) {
    std::string rows = "path,label\n";
    for (size_t i = 0; i < data.examples.size(); ++i) {
      const Example& e = data.examples[i];
      std::string text;
      for (int t = 0; t < e.series.length(); ++t) {
        for (int d = 0; d < e.series.dims(); ++d) {
          absl::StrAppend(&text, d ? "," : "", absl::StrFormat("%.6f", e.series.frames()(t, d)));
        }
        text += "\n";
      }
      const std::string name = absl::StrCat("s", i, ".csv");
      Write("data/" + std::filesystem::path(manifest).parent_path().string() + "/" + name, text);
      absl::StrAppend(&rows, name, ",", data.label_names[e.label], "\n");
    }
    Write("data/" + manifest, rows);
  }

  void StartWorker(const std::string& store = ":memory:") {
    auto jobs = JobStore::Open(store == ":memory:" ? store : dir() + "/" + store);
    ASSERT_TRUE(jobs.ok()) << jobs.status();
    job_store_ = *std::move(jobs);
    worker_ = std::make_unique<TrainingWorker>(job_store_.get(), manager_.get(), options_, nullptr);
    ASSERT_TRUE(worker_->Start().ok());
  }

  // A small, fast job on the sines.
  static v1::StartJobRequest SmallJob(int epochs = 2) {
    v1::StartJobRequest r;
    r.mutable_spec()->set_hidden(8);
    r.mutable_spec()->set_max_epochs(epochs);
    r.mutable_spec()->set_pairs_per_epoch(200);
    r.mutable_spec()->set_batch_pairs(20);
    r.mutable_spec()->set_validation("examples");
    r.mutable_dataset()->set_path("sines/manifest.csv");
    r.mutable_dataset()->set_format(v1::DATASET_FORMAT_CSV);
    return r;
  }

  v1::Job WaitFor(const std::string& id, std::function<bool(const v1::Job&)> done,
                  double seconds = 30) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(int(seconds * 1000));
    int64_t seen = -1;
    v1::Job job;
    while (std::chrono::steady_clock::now() < deadline) {
      absl::StatusOr<v1::Job> j = worker_->WaitForChange(id, &seen, absl::Milliseconds(200));
      EXPECT_TRUE(j.ok()) << j.status();
      if (!j.ok()) return job;
      job = *j;
      if (done(job)) return job;
    }
    ADD_FAILURE() << "timed out waiting for " << id << "; last state " << job.DebugString();
    return job;
  }

  v1::Job WaitEnded(const std::string& id) {
    return WaitFor(id, [](const v1::Job& j) { return TrainingWorker::IsTerminal(j.state()); });
  }

  std::string data_dir_;
  TrainingOptions options_;
  std::unique_ptr<ModelRegistry> registry_;
  std::unique_ptr<ModelManager> manager_;
  std::unique_ptr<SimilarityCore> core_;
  std::unique_ptr<JobStore> job_store_;
  std::unique_ptr<TrainingWorker> worker_;
};

TEST_F(TrainingWorkerTest, TrainsAVersionAndActivatesItWhenAsked) {
  StartWorker();
  v1::StartJobRequest request = SmallJob();
  request.mutable_spec()->set_activation(v1::ACTIVATION_POLICY_ALWAYS);
  absl::StatusOr<v1::Job> queued = worker_->StartJob(request);
  ASSERT_TRUE(queued.ok()) << queued.status();
  EXPECT_EQ(queued->job_id(), "job-1");
  EXPECT_EQ(queued->spec().learning_rate(), 1e-3);  // defaults filled in
  EXPECT_EQ(queued->spec().family(), "srn-a");
  const v1::Job job = WaitEnded("job-1");
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.reason();
  EXPECT_EQ(job.model_version(), 2);
  EXPECT_TRUE(job.activated());
  EXPECT_EQ(job.progress().epoch(), 2);
  EXPECT_EQ(job.progress().steps_per_epoch(), 10);
  EXPECT_GT(job.progress().best_val_auc(), 0.5);
  EXPECT_EQ(job.train_series() + job.validation_series(), 80);
  EXPECT_EQ(core_->model()->id, job.model_id());
  EXPECT_EQ(registry_->active_version(), 2);
  const v1::ListModelsResponse models = registry_->List();
  ASSERT_EQ(models.models_size(), 2);
  EXPECT_EQ(models.models(1).origin(), "job-1");
  EXPECT_NEAR(models.models(1).val_auc(), job.progress().best_val_auc(), 1e-9);
}

TEST_F(TrainingWorkerTest, MiningAndAveragingReachTheTrainer) {
  StartWorker();
  v1::StartJobRequest request = SmallJob(1);
  request.mutable_spec()->set_activation(v1::ACTIVATION_POLICY_ALWAYS);
  request.mutable_spec()->set_hard_negatives(0.5);
  request.mutable_spec()->set_weight_average(0.9);
  absl::StatusOr<v1::Job> queued = worker_->StartJob(request);
  ASSERT_TRUE(queued.ok()) << queued.status();
  const v1::Job job = WaitEnded(queued->job_id());
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.reason();
  // The trained model records the options it was trained with.
  const std::map<std::string, std::string>& hyper =
      core_->model()->model->metadata().hyperparameters;
  EXPECT_EQ(hyper.at("hard_negative_fraction"), "0.5");
  EXPECT_EQ(hyper.at("weight_average"), "0.9");
}

TEST_F(TrainingWorkerTest, TrainsOnUploadedSeriesWithoutActivating) {
  StartWorker();
  UploadedDataset upload(options_.max_upload_series, options_.limits);
  const Dataset sines = testing::MakeSineDataset(3, 20, kDims, 15, 20, 4);
  for (const Example& e : sines.examples) {
    v1::LabelledSeries s;
    s.set_label(sines.label_names[e.label]);
    s.mutable_series()->mutable_frames()->set_num_features(kDims);
    for (int t = 0; t < e.series.length(); ++t) {
      for (int d = 0; d < kDims; ++d)
        s.mutable_series()->mutable_frames()->add_values(e.series.frames()(t, d));
    }
    ASSERT_TRUE(upload.Add(s).ok());
  }
  absl::StatusOr<v1::Job> queued = worker_->StartUploadJob(SmallJob(1).spec(), std::move(upload));
  ASSERT_TRUE(queued.ok()) << queued.status();
  EXPECT_EQ(queued->dataset(), "upload of 60 series in 3 classes");
  const v1::Job job = WaitEnded(queued->job_id());
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.reason();
  EXPECT_FALSE(job.activated());
  EXPECT_EQ(registry_->active_version(), 1);  // manual policy by default
}

TEST_F(TrainingWorkerTest, QueuesBeyondMaxJobsAndCancels) {
  StartWorker();
  v1::StartJobRequest slow = SmallJob(1000);
  slow.mutable_spec()->set_pairs_per_epoch(5000);
  ASSERT_TRUE(worker_->StartJob(slow).ok());
  absl::StatusOr<v1::Job> second = worker_->StartJob(SmallJob());
  ASSERT_TRUE(second.ok());
  WaitFor("job-1", [](const v1::Job& j) { return j.progress().step() > 0; });
  ASSERT_EQ(worker_->GetJob("job-2")->state(), v1::JOB_STATE_QUEUED);  // only one runs at once
  EXPECT_EQ(worker_->ListJobs(true)->jobs_size(), 2);

  absl::StatusOr<v1::Job> cancelled = worker_->CancelJob("job-2");
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(cancelled->reason(), "cancelled by request before it started");
  ASSERT_TRUE(worker_->CancelJob("job-1").ok());
  const v1::Job first = WaitEnded("job-1");
  EXPECT_EQ(first.state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(first.reason(), "cancelled by request while running");
  EXPECT_EQ(first.model_version(), 0);
  EXPECT_EQ(worker_->CancelJob("job-1").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(worker_->CancelJob("job-9").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(registry_->List().models_size(), 1);  // nothing written
}

TEST_F(TrainingWorkerTest, MalformedDatasetFailsWithTheFileAndLine) {
  Write("data/bad/manifest.csv", "path,label\na.csv,x\nb.csv,y\n");
  Write("data/bad/a.csv", "1,2\n3,4\n");
  Write("data/bad/b.csv", "1,2\n3,oops\n");
  StartWorker();
  v1::StartJobRequest request = SmallJob();
  request.mutable_dataset()->set_path("bad/manifest.csv");
  ASSERT_TRUE(worker_->StartJob(request).ok());
  const v1::Job job = WaitEnded("job-1");
  EXPECT_EQ(job.state(), v1::JOB_STATE_FAILED);
  EXPECT_NE(job.reason().find("cannot read the dataset"), std::string::npos) << job.reason();
  EXPECT_NE(job.reason().find("b.csv:2"), std::string::npos) << job.reason();
  // The worker goes on with the next job.
  ASSERT_TRUE(worker_->StartJob(SmallJob(1)).ok());
  EXPECT_EQ(WaitEnded("job-2").state(), v1::JOB_STATE_SUCCEEDED);
}

TEST_F(TrainingWorkerTest, AbsurdLearningRateFailsAsDiverged) {
  StartWorker();
  v1::StartJobRequest request = SmallJob(3);
  request.mutable_spec()->set_learning_rate(1e6);
  request.mutable_spec()->set_activation(v1::ACTIVATION_POLICY_ALWAYS);
  ASSERT_TRUE(worker_->StartJob(request).ok());
  const v1::Job job = WaitEnded("job-1");
  EXPECT_EQ(job.state(), v1::JOB_STATE_FAILED);
  EXPECT_NE(job.reason().find("diverged"), std::string::npos) << job.reason();
  EXPECT_EQ(registry_->active_version(), 1);
  EXPECT_EQ(registry_->List().models_size(), 1);
}

TEST_F(TrainingWorkerTest, RestartMarksUnfinishedJobsInterrupted) {
  StartWorker("jobs.db");
  v1::StartJobRequest slow = SmallJob(1000);
  slow.mutable_spec()->set_pairs_per_epoch(5000);
  ASSERT_TRUE(worker_->StartJob(slow).ok());
  WaitFor("job-1", [](const v1::Job& j) { return j.state() == v1::JOB_STATE_RUNNING; });
  // A crash leaves the record as it was: simulate one by writing a running job behind the
  // worker's back, then "restart" on the same store.
  v1::Job crashed = *worker_->GetJob("job-1");
  worker_.reset();  // graceful: the running job ends as interrupted
  ASSERT_EQ(crashed.state(), v1::JOB_STATE_RUNNING);
  v1::Job queued = crashed;
  ASSERT_TRUE(job_store_->Create(&queued).ok());  // job-2, recorded as running
  job_store_.reset();

  StartWorker("jobs.db");
  const v1::Job first = *worker_->GetJob("job-1");
  EXPECT_EQ(first.state(), v1::JOB_STATE_INTERRUPTED);
  EXPECT_EQ(first.reason(), "the server shut down while the job was running");
  const v1::Job second = *worker_->GetJob("job-2");
  EXPECT_EQ(second.state(), v1::JOB_STATE_INTERRUPTED);
  EXPECT_EQ(second.reason(), "server restarted while the job was running");
  EXPECT_EQ(worker_->ListJobs(true)->jobs_size(), 0);
  // New jobs continue the numbering.
  EXPECT_EQ(worker_->StartJob(SmallJob(1))->job_id(), "job-3");
}

TEST_F(TrainingWorkerTest, RequestsAreChecked) {
  StartWorker();
  v1::StartJobRequest r = SmallJob();
  r.mutable_spec()->set_learning_rate(-1);
  EXPECT_EQ(worker_->StartJob(r).status().code(), absl::StatusCode::kInvalidArgument);
  r = SmallJob();
  r.mutable_spec()->set_weight_average(1);
  EXPECT_EQ(worker_->StartJob(r).status().code(), absl::StatusCode::kInvalidArgument);
  r = SmallJob();
  r.mutable_spec()->set_hard_negatives(1.5);
  EXPECT_EQ(worker_->StartJob(r).status().code(), absl::StatusCode::kInvalidArgument);
  r = SmallJob();
  r.mutable_spec()->set_family("transformer");
  EXPECT_EQ(worker_->StartJob(r).status().code(), absl::StatusCode::kInvalidArgument);
  r = SmallJob();
  r.mutable_dataset()->set_format(v1::DATASET_FORMAT_UNSPECIFIED);
  EXPECT_EQ(worker_->StartJob(r).status().code(), absl::StatusCode::kInvalidArgument);
  r = SmallJob();
  r.mutable_dataset()->set_path("../seed.srnw");
  EXPECT_EQ(worker_->StartJob(r).status().code(), absl::StatusCode::kPermissionDenied);
  r.mutable_dataset()->set_path("sines/../../seed.srnw");
  EXPECT_EQ(worker_->StartJob(r).status().code(), absl::StatusCode::kPermissionDenied);
  r.mutable_dataset()->set_path(dir() + "/seed.srnw");
  EXPECT_EQ(worker_->StartJob(r).status().code(), absl::StatusCode::kPermissionDenied);
  ASSERT_EQ(::symlink((dir() + "/models").c_str(), (data_dir_ + "/link").c_str()), 0);
  r.mutable_dataset()->set_path("link/MANIFEST");
  EXPECT_EQ(worker_->StartJob(r).status().code(), absl::StatusCode::kPermissionDenied);
  r.mutable_dataset()->set_path("missing.csv");
  EXPECT_EQ(worker_->StartJob(r).status().code(), absl::StatusCode::kNotFound);
  r.mutable_dataset()->set_path("sines");  // a folder, not a manifest
  EXPECT_EQ(worker_->StartJob(r).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(worker_->ListJobs(false)->jobs_size(), 0);
}

}  // namespace
}  // namespace srn
