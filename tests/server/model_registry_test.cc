#include "server/model_registry.h"

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "model/weights/weights_file.h"
#include "tests/testing/scratch_dir.h"
#include "tests/testing/test_models.h"

namespace srn {
namespace {

class ModelRegistryTest : public testing::ScratchDirTest {
 protected:
  std::string ModelDir() const { return dir() + "/models"; }
};

TEST_F(ModelRegistryTest, RecordsActivationsAndRollbacksAcrossReopening) {
  absl::StatusOr<std::unique_ptr<ModelRegistry>> registry = OpenDirectoryModelRegistry(ModelDir());
  ASSERT_TRUE(registry.ok()) << registry.status();
  for (uint64_t seed : {1, 2, 3}) {
    ASSERT_TRUE((*registry)->AddModel(*testing::RandomModel("srn-a", 3, 8, seed), "test").ok());
  }
  EXPECT_EQ((*registry)->active_version(), 0);
  EXPECT_EQ((*registry)->PreviousVersion(), 0);
  ASSERT_TRUE((*registry)->RecordActivation(1, false).ok());
  ASSERT_TRUE((*registry)->RecordActivation(3, false).ok());
  EXPECT_EQ((*registry)->active_version(), 3);
  EXPECT_EQ((*registry)->PreviousVersion(), 1);
  absl::StatusOr<v1::ModelVersion> v2 = (*registry)->Find(2);
  ASSERT_TRUE(v2.ok()) << v2.status();
  EXPECT_EQ(v2->version(), 2);
  EXPECT_EQ((*registry)->Find(9).status().code(), absl::StatusCode::kNotFound);

  registry->reset();
  absl::StatusOr<std::unique_ptr<ModelRegistry>> reopened = OpenDirectoryModelRegistry(ModelDir());
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ((*reopened)->active_version(), 3);
  ASSERT_TRUE((*reopened)->RecordActivation(1, true).ok());  // a rollback forgets 3
  EXPECT_EQ((*reopened)->active_version(), 1);
  EXPECT_EQ((*reopened)->PreviousVersion(), 0);
}

TEST_F(ModelRegistryTest, DamagedManifestIsDataLoss) {
  std::filesystem::create_directories(ModelDir());
  std::ofstream(ModelDir() + "/MANIFEST") << "something else\n";
  EXPECT_EQ(OpenDirectoryModelRegistry(ModelDir()).status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace srn
