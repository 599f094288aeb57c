#include "base/file.h"

#include <sys/stat.h>

#include <filesystem>
#include <string>

#include "gtest/gtest.h"
#include "tests/testing/scratch_dir.h"

namespace srn {
namespace {

class FileTest : public testing::ScratchDirTest {};

TEST_F(FileTest, ReadsWhatWasWritten) {
  const std::string path = Write("a.txt", "line 1\nline 2\n");
  absl::StatusOr<std::string> text = ReadFileToString(path);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "line 1\nline 2\n");
}

TEST_F(FileTest, ReadErrorsNameThePathAndTheReason) {
  absl::StatusOr<std::string> missing = ReadFileToString(dir() + "/missing.txt");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("missing.txt"), std::string::npos);
  absl::StatusOr<std::string> folder = ReadFileToString(dir());
  EXPECT_EQ(folder.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(folder.status().message().find("not a regular file"), std::string::npos);
}

TEST_F(FileTest, AtomicWriteReplacesTheFileAndLeavesNoTemporary) {
  const std::string path = Write("m", "old");
  ASSERT_TRUE(WriteFileAtomically(path, std::string("new\0bytes", 9)).ok());
  EXPECT_EQ(*ReadFileToString(path), std::string("new\0bytes", 9));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  ASSERT_TRUE(WriteFileAtomically(dir() + "/fresh", "").ok());
  EXPECT_EQ(*ReadFileToString(dir() + "/fresh"), "");
}

TEST_F(FileTest, AtomicWriteFailureLeavesTheOldContent) {
  const std::string path = Write("m", "old");
  // A directory where the temporary would go makes the write fail before the rename.
  std::filesystem::create_directory(path + ".tmp");
  absl::Status status = WriteFileAtomically(path, "new");
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("m.tmp"), std::string::npos) << status;
  EXPECT_EQ(*ReadFileToString(path), "old");
  absl::Status no_dir = WriteFileAtomically(dir() + "/no/such/dir/m", "x");
  EXPECT_EQ(no_dir.code(), absl::StatusCode::kNotFound) << no_dir;
}

}  // namespace
}  // namespace srn
