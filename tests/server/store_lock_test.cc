#include "server/store_lock.h"

#include <unistd.h>

#include <optional>
#include <string>

#include "gtest/gtest.h"

namespace srn {
namespace {

TEST(StoreLockTest, OneHolderAtATime) {
  // Per process: other test runs (other build directories) may share the temporary directory.
  const std::string store =
      ::testing::TempDir() + "/store_lock_test_" + std::to_string(getpid()) + ".db";
  std::optional<StoreLock> first;
  {
    absl::StatusOr<StoreLock> lock = StoreLock::Acquire(store);
    ASSERT_TRUE(lock.ok()) << lock.status();
    first.emplace(*std::move(lock));
  }
  absl::StatusOr<StoreLock> second = StoreLock::Acquire(store);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("in use by another srn-server (pid "), std::string::npos)
      << second.status();
  first.reset();  // released
  EXPECT_TRUE(StoreLock::Acquire(store).ok());
}

TEST(StoreLockTest, UnwritableLocationIsAClearError) {
  absl::StatusOr<StoreLock> lock = StoreLock::Acquire("/nonexistent-dir/x.db");
  ASSERT_FALSE(lock.ok());
  EXPECT_EQ(lock.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(lock.status().message().find("/nonexistent-dir/x.db.lock"), std::string::npos);
}

}  // namespace
}  // namespace srn
