#include "tests/testing/scratch_dir.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace srn::testing {

void ScratchDirTest::SetUp() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  dir_ = (std::filesystem::path(::testing::TempDir()) /
          ("srn_" + std::string(info->test_suite_name()) + "_" + std::to_string(::getpid()) + "_" +
           info->name()))
             .string();
  std::filesystem::remove_all(dir_);
  std::filesystem::create_directories(dir_);
}

void ScratchDirTest::TearDown() { std::filesystem::remove_all(dir_); }

std::string ScratchDirTest::Write(const std::string& name, const std::string& text) const {
  const std::string path = (std::filesystem::path(dir_) / name).string();
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

}  // namespace srn::testing
