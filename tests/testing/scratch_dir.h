#ifndef SRN_TESTS_TESTING_SCRATCH_DIR_H_
#define SRN_TESTS_TESTING_SCRATCH_DIR_H_

#include <string>

#include "gtest/gtest.h"

namespace srn::testing {

// A test fixture that gives each test a fresh, empty folder (unique per process and test) and
// removes it afterwards.
class ScratchDirTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // The test's folder.
  const std::string& dir() const { return dir_; }
  // Writes `text` to dir()/name (creating sub-folders) and returns the path.
  std::string Write(const std::string& name, const std::string& text) const;

 private:
  std::string dir_;
};

}  // namespace srn::testing

#endif  // SRN_TESTS_TESTING_SCRATCH_DIR_H_
