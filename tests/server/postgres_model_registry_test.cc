// The model registry in a real PostgreSQL database (tests/testing/scratch_postgres.h), shared by
// two registries standing for two servers: what one records, the other sees after Poll, and is
// woken for by WaitForChange.

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "model/weights/weights_file.h"
#include "server/model_registry.h"
#include "tests/testing/scratch_dir.h"
#include "tests/testing/scratch_postgres.h"
#include "tests/testing/test_models.h"

namespace srn {
namespace {

class PostgresModelRegistryTest : public testing::ScratchDirTest {
 protected:
  void SetUp() override {
    testing::ScratchDirTest::SetUp();
    std::string why;
    postgres_ = testing::ScratchPostgres::Start(&why);
    if (postgres_ != nullptr) uri_ = postgres_->NewDatabase(&why);
    if (uri_.empty()) {
      if (testing::PostgresRequired()) FAIL() << why;
      GTEST_SKIP() << "PostgreSQL model registry not tested: " << why;
    }
  }

  std::unique_ptr<ModelRegistry> Open() {
    absl::StatusOr<std::unique_ptr<ModelRegistry>> registry = OpenPostgresModelRegistry(uri_);
    EXPECT_TRUE(registry.ok()) << registry.status();
    return registry.ok() ? *std::move(registry) : nullptr;
  }

  std::unique_ptr<testing::ScratchPostgres> postgres_;
  std::string uri_;
};

TEST_F(PostgresModelRegistryTest, ServersShareVersionsAndActivations) {
  std::unique_ptr<ModelRegistry> a = Open();
  std::unique_ptr<ModelRegistry> b = Open();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_TRUE(a->shared());
  EXPECT_EQ(a->active_version(), 0);

  // Both seed the empty registry at start-up: the first import wins, the second serves it.
  auto first = testing::RandomModel("srn-a", 3, 8, 1);
  auto other = testing::RandomModel("srn-a", 3, 8, 2);
  ASSERT_TRUE(SaveModel(*first, dir() + "/first.srnw").ok());
  ASSERT_TRUE(SaveModel(*other, dir() + "/other.srnw").ok());
  ASSERT_EQ(*a->ImportInitial(dir() + "/first.srnw"), 1);
  ASSERT_EQ(*b->ImportInitial(dir() + "/other.srnw"), 1);
  EXPECT_EQ(b->Find(1)->model_id(), ModelFingerprint(*first));
  EXPECT_EQ(b->Find(1)->origin(), "imported " + dir() + "/first.srnw");
  absl::StatusOr<std::shared_ptr<const ServingModel>> loaded = b->LoadVersion(1);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->id, ModelFingerprint(*first));
  EXPECT_EQ((*loaded)->version, "1");

  // A adds two versions; B sees them once it polls (and is woken for them).
  ASSERT_EQ(*a->AddModel(*other, "job-1"), 2);
  ASSERT_EQ(*a->AddModel(*testing::RandomModel("srn-a", 3, 8, 3), "job-2"), 3);
  EXPECT_EQ(b->Find(2).status().code(), absl::StatusCode::kNotFound);
  bool woken = false;
  for (int i = 0; i < 20 && !woken; ++i) woken = b->WaitForChange(0.5);
  EXPECT_TRUE(woken);
  EXPECT_EQ(b->Poll(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(b->Find(2)->origin(), "job-1");
  EXPECT_EQ(b->LoadableVersions(), (std::vector<int64_t>{3, 2, 1}));

  // Activations and a rollback recorded by one are the other's after a poll.
  ASSERT_TRUE(b->RecordActivation(3, false).ok());
  ASSERT_TRUE(a->RecordActivation(2, false).ok());
  a->Poll();
  b->Poll();
  EXPECT_EQ(b->active_version(), 2);
  EXPECT_EQ(b->PreviousVersion(), 3);
  ASSERT_TRUE(b->RecordActivation(3, true).ok());
  a->Poll();
  EXPECT_EQ(a->active_version(), 3);
  EXPECT_EQ(a->PreviousVersion(), 1);
  const v1::ListModelsResponse list = a->List();
  ASSERT_EQ(list.models_size(), 3);
  EXPECT_EQ(list.active_version(), 3);
  EXPECT_TRUE(list.models(2).active());

  // A registry opened now reads the same state.
  std::unique_ptr<ModelRegistry> c = Open();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->active_version(), 3);
  EXPECT_EQ(c->PreviousVersion(), 1);
  EXPECT_EQ(c->Find(3)->model_id(), a->Find(3)->model_id());
  EXPECT_EQ(c->LoadVersion(9).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(PostgresModelRegistryTest, MessagesNameTheDatabaseWithoutThePassword) {
  const std::string unreachable =
      absl::StrCat("postgresql://srn:s3cret-pw@127.0.0.1:", postgres_->port() + 1, "/nowhere");
  absl::StatusOr<std::unique_ptr<ModelRegistry>> registry = OpenPostgresModelRegistry(unreachable);
  ASSERT_FALSE(registry.ok());
  EXPECT_EQ(registry.status().code(), absl::StatusCode::kUnavailable);
  const std::string message(registry.status().message());
  EXPECT_NE(message.find("cannot connect to the model registry postgresql://127.0.0.1:"),
            std::string::npos)
      << message;
  EXPECT_EQ(message.find("s3cret-pw"), std::string::npos) << message;
  std::unique_ptr<ModelRegistry> ok = Open();
  ASSERT_NE(ok, nullptr);
  EXPECT_EQ(ok->location().find("postgresql://"), 0u);
  EXPECT_EQ(ok->location().find("srn@"), std::string::npos);
}

}  // namespace
}  // namespace srn
