#include "server/model_manager.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "gtest/gtest.h"
#include "model/weights/weights_file.h"
#include "tests/testing/requests.h"
#include "tests/testing/scratch_dir.h"
#include "tests/testing/test_models.h"

namespace srn {
namespace {

constexpr int kDims = 3;

v1::SeriesInput RandomInput(int frames, std::mt19937_64* rng, int dims = kDims) {
  return testing::RandomFramesInput(frames, dims, rng);
}

class ModelManagerTest : public testing::ScratchDirTest {
 protected:
  std::string ModelDir() const { return dir() + "/models"; }

  // A registry seeded with a random model (version 1, active) and a core serving it.
  std::unique_ptr<ModelRegistry> OpenSeeded() {
    const std::string seed_path = dir() + "/seed.srnw";
    EXPECT_TRUE(SaveModel(*testing::RandomModel("srn-a", kDims, 8, 1), seed_path).ok());
    absl::StatusOr<std::unique_ptr<ModelRegistry>> registry =
        OpenDirectoryModelRegistry(ModelDir());
    EXPECT_TRUE(registry.ok()) << registry.status();
    if (!registry.ok()) return nullptr;
    absl::StatusOr<int64_t> v = (*registry)->ImportInitial(seed_path);
    EXPECT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(*v, 1);
    Attach(registry->get());
    return *std::move(registry);
  }

  void Attach(ModelRegistry* registry) {
    absl::StatusOr<std::shared_ptr<const ServingModel>> model =
        registry->LoadVersion(registry->active_version());
    ASSERT_TRUE(model.ok()) << model.status();
    core_ =
        std::make_unique<SimilarityCore>(*model, NewInMemorySubjectStore(), CoreOptions(), nullptr);
    ASSERT_TRUE(core_->Recover().ok());
    manager_ = std::make_unique<ModelManager>(registry, core_.get(), nullptr);
  }

  // Enrolls `subject` with one random reference of the seeded model's shape.
  void EnrollOne(const std::string& subject) {
    v1::EnrollRequest enroll;
    enroll.set_subject_id(subject);
    *enroll.add_references() = RandomInput(6, &rng_);
    ASSERT_TRUE(core_->Enroll(enroll).ok()) << subject;
  }

  std::unique_ptr<SimilarityCore> core_;
  std::unique_ptr<ModelManager> manager_;  // activates versions of the registry last attached
  std::mt19937_64 rng_{7};
};

TEST_F(ModelManagerTest, AddActivateRollbackAndReopen) {
  std::unique_ptr<ModelRegistry> registry = OpenSeeded();
  ASSERT_NE(registry, nullptr);
  ASSERT_NO_FATAL_FAILURE(EnrollOne("alice"));
  const std::string id1 = core_->model()->id;

  auto m2 = testing::RandomModel("srn-a", kDims, 8, 2);
  absl::StatusOr<int64_t> v2 = registry->AddModel(*m2, "job-1");
  ASSERT_TRUE(v2.ok()) << v2.status();
  EXPECT_EQ(*v2, 2);
  EXPECT_TRUE(std::filesystem::exists(ModelDir() + "/v2.srnw"));
  EXPECT_EQ(registry->active_version(), 1);  // adding does not activate

  absl::StatusOr<v1::ActivateModelResponse> activated = manager_->Activate(2);
  ASSERT_TRUE(activated.ok()) << activated.status();
  EXPECT_EQ(activated->reembedded_subjects(), 1);
  EXPECT_EQ(core_->model()->id, ModelFingerprint(*m2));
  EXPECT_EQ(registry->active_version(), 2);
  // The subject was re-embedded by the new model: Verify reports it.
  v1::VerifyRequest verify;
  verify.set_subject_id("alice");
  *verify.mutable_query() = RandomInput(5, &rng_);
  ASSERT_EQ(core_->Verify(verify)->model_id(), ModelFingerprint(*m2));

  const v1::ListModelsResponse list = registry->List();
  ASSERT_EQ(list.models_size(), 2);
  EXPECT_EQ(list.active_version(), 2);
  EXPECT_EQ(list.models(0).origin(), "imported " + dir() + "/seed.srnw");
  EXPECT_FALSE(list.models(0).active());
  EXPECT_EQ(list.models(1).origin(), "job-1");
  EXPECT_TRUE(list.models(1).active());
  EXPECT_EQ(list.models(1).model_id(), ModelFingerprint(*m2));

  // Activation survives reopening the directory.
  registry.reset();
  absl::StatusOr<std::unique_ptr<ModelRegistry>> reopened = OpenDirectoryModelRegistry(ModelDir());
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ((*reopened)->active_version(), 2);
  Attach(reopened->get());
  absl::StatusOr<v1::ActivateModelResponse> back = manager_->Rollback();
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->model().version(), 1);
  EXPECT_EQ(core_->model()->id, id1);
  EXPECT_EQ((*reopened)->active_version(), 1);
  // Nothing before version 1.
  EXPECT_EQ(manager_->Rollback().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(manager_->Activate(9).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ModelManagerTest, FailedActivationKeepsTheActiveModel) {
  std::unique_ptr<ModelRegistry> registry = OpenSeeded();
  ASSERT_NE(registry, nullptr);
  ASSERT_NO_FATAL_FAILURE(EnrollOne("bob"));
  const std::string before = core_->model()->id;
  // A model of another feature count cannot embed bob's references.
  absl::StatusOr<int64_t> v =
      registry->AddModel(*testing::RandomModel("srn-a", kDims + 2, 8, 3), "job-2");
  ASSERT_TRUE(v.ok());
  absl::StatusOr<v1::ActivateModelResponse> activated = manager_->Activate(*v);
  EXPECT_EQ(activated.status().code(), absl::StatusCode::kFailedPrecondition) << activated.status();
  EXPECT_NE(activated.status().message().find("the active model stays"), std::string::npos);
  EXPECT_EQ(core_->model()->id, before);
  EXPECT_EQ(registry->active_version(), 1);

  // A version whose file was damaged after registration is refused the same way.
  absl::StatusOr<int64_t> v3 =
      registry->AddModel(*testing::RandomModel("srn-a", kDims, 8, 4), "job-3");
  ASSERT_TRUE(v3.ok());
  {
    std::fstream f(ModelDir() + "/v3.srnw", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x5a');
  }
  EXPECT_EQ(manager_->Activate(*v3).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(core_->model()->id, before);
}

TEST_F(ModelManagerTest, PollRegistersDroppedFilesAndSkipsCorruptOnes) {
  std::unique_ptr<ModelRegistry> registry = OpenSeeded();
  ASSERT_NE(registry, nullptr);
  auto dropped = testing::RandomModel("gru-a", kDims, 8, 5);
  ASSERT_TRUE(SaveModel(*dropped, ModelDir() + "/offline.srnw").ok());
  {
    std::ofstream bad(ModelDir() + "/broken.srnw", std::ios::binary);
    bad << "not a weights file";
  }
  std::ofstream(ModelDir() + "/half.srnw.tmp") << "being written";

  const std::vector<int64_t> added = registry->Poll();
  ASSERT_EQ(added, std::vector<int64_t>({2}));
  EXPECT_TRUE(std::filesystem::exists(ModelDir() + "/v2.srnw"));
  EXPECT_FALSE(std::filesystem::exists(ModelDir() + "/offline.srnw"));
  EXPECT_TRUE(std::filesystem::exists(ModelDir() + "/broken.srnw"));  // left alone
  const v1::ListModelsResponse list = registry->List();
  ASSERT_EQ(list.models_size(), 2);
  EXPECT_EQ(list.models(1).origin(), "dropped offline.srnw");
  EXPECT_EQ(list.models(1).family(), "gru-a");
  EXPECT_EQ(list.active_version(), 1);  // never activated by being dropped
  EXPECT_TRUE(registry->Poll().empty());  // the corrupt file is not retried until it changes

  // Activating the dropped version works like any other.
  ASSERT_TRUE(manager_->Activate(2).ok());
  EXPECT_EQ(core_->model()->id, ModelFingerprint(*dropped));
}

TEST_F(ModelManagerTest, ChoosesTheRegistrysActiveVersionElseImportsTheWeightsFile) {
  const std::string seed_path = dir() + "/seed.srnw";
  auto seed = testing::RandomModel("srn-a", kDims, 8, 1);
  ASSERT_TRUE(SaveModel(*seed, seed_path).ok());
  // Without a registry: the weights file, with no version.
  absl::StatusOr<std::shared_ptr<const ServingModel>> plain =
      ModelManager::ChooseInitial(seed_path, nullptr, {});
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ((*plain)->id, ModelFingerprint(*seed));
  EXPECT_EQ((*plain)->version, "");
  // An empty registry imports it as version 1.
  absl::StatusOr<std::unique_ptr<ModelRegistry>> registry = OpenDirectoryModelRegistry(ModelDir());
  ASSERT_TRUE(registry.ok()) << registry.status();
  absl::StatusOr<std::shared_ptr<const ServingModel>> first =
      ModelManager::ChooseInitial(seed_path, registry->get(), {});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ((*first)->version, "1");
  EXPECT_EQ((*registry)->active_version(), 1);
  // Once it has an active version, that is served and another weights file is not imported.
  const std::string other_path = dir() + "/other.srnw";
  ASSERT_TRUE(SaveModel(*testing::RandomModel("gru-a", kDims, 8, 2), other_path).ok());
  absl::StatusOr<std::shared_ptr<const ServingModel>> again =
      ModelManager::ChooseInitial(other_path, registry->get(), {});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->id, ModelFingerprint(*seed));
  EXPECT_EQ((*registry)->List().models_size(), 1);
  // Nothing to serve: the error says what to give.
  absl::StatusOr<std::unique_ptr<ModelRegistry>> empty =
      OpenDirectoryModelRegistry(dir() + "/empty");
  ASSERT_TRUE(empty.ok());
  const absl::Status none = ModelManager::ChooseInitial("", empty->get(), {}).status();
  EXPECT_EQ(none.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(none.message().find("--weights"), std::string::npos) << none;
}

TEST_F(ModelManagerTest, ACorruptOrMissingActiveVersionFallsBackToTheNewestThatLoads) {
  std::vector<std::shared_ptr<const SimilarityModel>> models;
  std::string active_path;
  {
    absl::StatusOr<std::unique_ptr<ModelRegistry>> registry =
        OpenDirectoryModelRegistry(ModelDir());
    ASSERT_TRUE(registry.ok()) << registry.status();
    for (int v = 1; v <= 3; ++v) {
      models.push_back(testing::RandomModel("srn-a", kDims, 8, 10 + v));
      ASSERT_EQ(*(*registry)->AddModel(*models.back(), "test"), v);
    }
    ASSERT_TRUE((*registry)->RecordActivation(3, false).ok());
    active_path = (*registry)->Find(3)->path();
  }
  // The active file is damaged: version 2, the newest good one, serves; ListModels says why.
  std::ofstream(active_path, std::ios::binary | std::ios::trunc) << "not a weights file";
  absl::StatusOr<std::unique_ptr<ModelRegistry>> registry = OpenDirectoryModelRegistry(ModelDir());
  ASSERT_TRUE(registry.ok()) << registry.status();
  absl::StatusOr<std::shared_ptr<const ServingModel>> chosen =
      ModelManager::ChooseInitial("", registry->get(), {});
  ASSERT_TRUE(chosen.ok()) << chosen.status();
  EXPECT_EQ((*chosen)->version, "2");
  EXPECT_EQ((*chosen)->id, ModelFingerprint(*models[1]));
  const v1::ListModelsResponse list = (*registry)->List();
  EXPECT_EQ(list.active_version(), 3);
  ASSERT_EQ(list.models_size(), 3);
  EXPECT_FALSE(list.models(2).error().empty());
  EXPECT_TRUE(list.models(1).error().empty());

  // Missing instead of damaged: the same.
  ASSERT_EQ(std::remove(active_path.c_str()), 0);
  registry = OpenDirectoryModelRegistry(ModelDir());
  ASSERT_TRUE(registry.ok()) << registry.status();
  chosen = ModelManager::ChooseInitial("", registry->get(), {});
  ASSERT_TRUE(chosen.ok()) << chosen.status();
  EXPECT_EQ((*chosen)->version, "2");

  // Activating a good version from the fallback swaps it in and records it.
  SimilarityCore core(*chosen, NewInMemorySubjectStore(), CoreOptions(), nullptr);
  ModelManager manager(registry->get(), &core, nullptr);
  ASSERT_TRUE(manager.Activate(1).ok());
  EXPECT_EQ(core.model()->version, "1");
  EXPECT_EQ((*registry)->active_version(), 1);

  // No version loads at all: the start is refused, naming the active version.
  for (int v = 1; v <= 2; ++v) {
    std::ofstream((*registry)->Find(v)->path(), std::ios::binary | std::ios::trunc) << "x";
  }
  registry = OpenDirectoryModelRegistry(ModelDir());
  ASSERT_TRUE(registry.ok()) << registry.status();
  const absl::Status none = ModelManager::ChooseInitial("", registry->get(), {}).status();
  EXPECT_FALSE(none.ok());
  EXPECT_NE(none.message().find("active model version 1"), std::string::npos) << none;
  EXPECT_NE(none.message().find("no other version loads"), std::string::npos) << none;
}

// Rollbacks in a row walk back through the activations, each swapping the served model, until
// there is nothing before.
TEST_F(ModelManagerTest, SeveralRollbacksInARowWalkBackThroughTheActivations) {
  std::unique_ptr<ModelRegistry> registry = OpenSeeded();
  ASSERT_NE(registry, nullptr);
  ASSERT_NO_FATAL_FAILURE(EnrollOne("alice"));
  std::vector<std::string> ids = {core_->model()->id};
  for (int v = 2; v <= 4; ++v) {
    auto m = testing::RandomModel("srn-a", kDims, 8, 20 + v);
    ASSERT_EQ(*registry->AddModel(*m, "job"), v);
    ASSERT_TRUE(manager_->Activate(v).ok());
    ids.push_back(ModelFingerprint(*m));
  }
  EXPECT_EQ(core_->model()->id, ids[3]);
  v1::VerifyRequest verify;
  verify.set_subject_id("alice");
  *verify.mutable_query() = RandomInput(5, &rng_);
  for (int expected = 3; expected >= 1; --expected) {
    absl::StatusOr<v1::ActivateModelResponse> back = manager_->Rollback();
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->model().version(), expected);
    EXPECT_EQ(registry->active_version(), expected);
    EXPECT_EQ(core_->model()->id, ids[expected - 1]);
    EXPECT_EQ(core_->Verify(verify)->model_id(), ids[expected - 1]);  // re-embedded, answering
  }
  EXPECT_EQ(manager_->Rollback().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(core_->model()->id, ids[0]);
}

// A registered version whose file has gone: activating it fails naming the file, the active model
// keeps serving, and ListModels marks that version.
TEST_F(ModelManagerTest, AVersionWhoseFileIsMissingIsRefusedAndMarked) {
  std::unique_ptr<ModelRegistry> registry = OpenSeeded();
  ASSERT_NE(registry, nullptr);
  const std::string before = core_->model()->id;
  ASSERT_EQ(*registry->AddModel(*testing::RandomModel("srn-a", kDims, 8, 31), "job"), 2);
  const std::string path = registry->Find(2)->path();
  ASSERT_EQ(std::remove(path.c_str()), 0);
  absl::StatusOr<v1::ActivateModelResponse> activated = manager_->Activate(2);
  EXPECT_FALSE(activated.ok());
  EXPECT_NE(activated.status().message().find(path), std::string::npos) << activated.status();
  EXPECT_EQ(core_->model()->id, before);
  EXPECT_EQ(registry->active_version(), 1);
  absl::StatusOr<std::unique_ptr<ModelRegistry>> reopened = OpenDirectoryModelRegistry(ModelDir());
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  const v1::ListModelsResponse list = (*reopened)->List();
  ASSERT_EQ(list.models_size(), 2);
  EXPECT_FALSE(list.models(1).error().empty());
  EXPECT_TRUE(list.models(0).error().empty());
}

// With polling on, a dropped file that does not load is left alone, and once it is replaced by
// one that loads, the background poll registers it (waited for, not timed).
TEST_F(ModelManagerTest, TheBackgroundPollPicksUpARejectedFileOnceItIsFixed) {
  std::unique_ptr<ModelRegistry> registry = OpenSeeded();
  ASSERT_NE(registry, nullptr);
  const std::string dropped = ModelDir() + "/offline.srnw";
  std::ofstream(dropped, std::ios::binary) << "not yet a weights file";
  ModelManager polling(registry.get(), core_.get(), nullptr);
  CancellationFlag stop;
  std::thread poller([&] { polling.FollowRegistry(stop, 0.02); });
  const auto stop_polling = absl::MakeCleanup([&] {
    stop.Cancel();
    poller.join();
  });
  // Several polls pass over the broken file without registering it.
  const auto polled_for = std::chrono::milliseconds(200);
  std::this_thread::sleep_for(polled_for);
  EXPECT_EQ(registry->List().models_size(), 1);
  EXPECT_TRUE(std::filesystem::exists(dropped));
  auto fixed = testing::RandomModel("srn-a", kDims, 8, 41);
  ASSERT_TRUE(SaveModel(*fixed, dropped + ".tmp").ok());
  std::filesystem::rename(dropped + ".tmp", dropped);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (registry->List().models_size() < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const v1::ListModelsResponse list = registry->List();
  ASSERT_EQ(list.models_size(), 2);
  EXPECT_EQ(list.models(1).model_id(), ModelFingerprint(*fixed));
  EXPECT_EQ(list.models(1).origin(), "dropped offline.srnw");
  EXPECT_EQ(list.active_version(), 1);  // registered, not activated
}

TEST_F(ModelManagerTest, WithoutARegistryActivationIsAFailedPrecondition) {
  auto model = *MakeServingModel(testing::RandomModel("srn-a", kDims, 8, 1), "test", "");
  SimilarityCore core(model, NewInMemorySubjectStore(), CoreOptions(), nullptr);
  ModelManager manager(nullptr, &core, nullptr);
  EXPECT_EQ(manager.Activate(1).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(manager.Rollback().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(manager.current()->id, model->id);
}

}  // namespace
}  // namespace srn
