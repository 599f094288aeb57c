#ifndef SRN_TESTS_TESTING_TEST_DATA_H_
#define SRN_TESTS_TESTING_TEST_DATA_H_

#include <string>

#include "gtest/gtest.h"

namespace srn::testing {

// Full path of `relative` inside the data directory ($SRN_DATA_DIR or ../shared/data), or ""
// when it does not exist.
std::string FindData(const std::string& relative);

}  // namespace srn::testing

// Skips the current test, saying what is missing and how to provide it, when the public data
// file or folder `relative` (e.g. "spoken_arabic_digit/Train_Arabic_Digit.txt") is absent.
#define SRN_REQUIRE_DATA(path_var, relative)                                              \
  const std::string path_var = ::srn::testing::FindData(relative);                        \
  if (path_var.empty()) {                                                                 \
    GTEST_SKIP() << "public data '" << (relative) << "' not found under ../shared/data; " \
                 << "set SRN_DATA_DIR to the folder that holds it";                       \
  }

#endif  // SRN_TESTS_TESTING_TEST_DATA_H_
