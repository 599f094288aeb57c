#include "server/activation_policy.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "model/weights/weights_file.h"
#include "server/similarity_core.h"
#include "server/subject_store.h"
#include "tests/testing/scratch_dir.h"
#include "tests/testing/test_models.h"

namespace srn {
namespace {

TEST(ShouldActivateTest, FollowsThePolicy) {
  for (const std::optional<double> active : {std::optional<double>(), std::optional<double>(0.8)}) {
    EXPECT_TRUE(ShouldActivate(v1::ACTIVATION_POLICY_ALWAYS, 0.1, active));
    EXPECT_FALSE(ShouldActivate(v1::ACTIVATION_POLICY_MANUAL, 0.99, active));
    EXPECT_FALSE(ShouldActivate(v1::ACTIVATION_POLICY_UNSPECIFIED, 0.99, active));
  }
  EXPECT_TRUE(ShouldActivate(v1::ACTIVATION_POLICY_IF_BETTER, 0.9, 0.8));
  EXPECT_FALSE(ShouldActivate(v1::ACTIVATION_POLICY_IF_BETTER, 0.8, 0.8));  // ties keep it
  EXPECT_FALSE(ShouldActivate(v1::ACTIVATION_POLICY_IF_BETTER, 0.7, 0.8));
  // An active model without a recorded AUC always loses.
  EXPECT_TRUE(ShouldActivate(v1::ACTIVATION_POLICY_IF_BETTER, 0.1, std::nullopt));
}

class ApplyActivationPolicyTest : public testing::ScratchDirTest {
 protected:
  void SetUp() override {
    ScratchDirTest::SetUp();
    const std::string seed = dir() + "/seed.srnw";
    ASSERT_TRUE(SaveModel(*testing::RandomModel("srn-a", 2, 8, 1), seed).ok());
    auto registry = OpenDirectoryModelRegistry(dir() + "/models");
    ASSERT_TRUE(registry.ok()) << registry.status();
    registry_ = *std::move(registry);
    ASSERT_TRUE(registry_->ImportInitial(seed).ok());
    auto model = registry_->LoadVersion(1);
    ASSERT_TRUE(model.ok()) << model.status();
    core_ = std::make_unique<SimilarityCore>(*model, NewInMemorySubjectStore(), CoreOptions(),
                                             nullptr);
    ASSERT_TRUE(core_->Recover().ok());
    manager_ = std::make_unique<ModelManager>(registry_.get(), core_.get(), nullptr);
    absl::StatusOr<int64_t> v =
        registry_->AddModel(*testing::RandomModel("srn-a", 2, 8, 2), "job-1");
    ASSERT_TRUE(v.ok()) << v.status();
    version_ = *v;
  }

  std::unique_ptr<ModelRegistry> registry_;
  std::unique_ptr<SimilarityCore> core_;
  std::unique_ptr<ModelManager> manager_;
  int64_t version_ = 0;
};

TEST_F(ApplyActivationPolicyTest, ActivatesOnlyWhenThePolicySays) {
  ActivationOutcome outcome =
      ApplyActivationPolicy(v1::ACTIVATION_POLICY_MANUAL, version_, 0.9, manager_.get());
  EXPECT_FALSE(outcome.activated);
  EXPECT_TRUE(outcome.error.empty());
  EXPECT_EQ(registry_->active_version(), 1);
  outcome = ApplyActivationPolicy(v1::ACTIVATION_POLICY_ALWAYS, version_, 0.9, manager_.get());
  EXPECT_TRUE(outcome.activated) << outcome.error;
  EXPECT_EQ(registry_->active_version(), version_);
}

TEST_F(ApplyActivationPolicyTest, AFailedActivationIsReportedAndKeepsTheActiveModel) {
  const ActivationOutcome outcome =
      ApplyActivationPolicy(v1::ACTIVATION_POLICY_ALWAYS, 99, 0.9, manager_.get());
  EXPECT_FALSE(outcome.activated);
  EXPECT_FALSE(outcome.error.empty());
  EXPECT_EQ(registry_->active_version(), 1);
}

}  // namespace
}  // namespace srn
