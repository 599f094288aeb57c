#include "model/data/dataset.h"

#include <cstdlib>
#include <string>

#include "gtest/gtest.h"

namespace srn {
namespace {

Example MakeExample(int label, float value) {
  Example e;
  e.series = Series(1, 1);
  e.series.mutable_frames()(0, 0) = value;
  e.label = label;
  return e;
}

TEST(DatasetTest, SeriesPointersPointIntoTheExamples) {
  Dataset d;
  d.examples = {MakeExample(0, 1.0f), MakeExample(1, 2.0f), MakeExample(0, 3.0f)};
  const std::vector<const Series*> pointers = d.SeriesPointers();
  ASSERT_EQ(pointers.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(pointers[i], &d.examples[i].series);
  EXPECT_EQ(pointers[2]->frames()(0, 0), 3.0f);
  EXPECT_TRUE(Dataset().SeriesPointers().empty());
}

TEST(DatasetTest, FilterKeepsLabelNumbersAndNames) {
  Dataset d{"toy", {"a", "b"}, {MakeExample(0, 1.0f), MakeExample(1, 2.0f), MakeExample(0, 3.0f)}};
  Dataset only_a = d.Filter([](const Example& e) { return e.label == 0; });
  EXPECT_EQ(only_a.name, "toy");
  EXPECT_EQ(only_a.num_labels(), 2);
  ASSERT_EQ(only_a.examples.size(), 2u);
  EXPECT_EQ(only_a.examples[1].series.frames()(0, 0), 3.0f);
  EXPECT_EQ(only_a.dims(), 1);
  EXPECT_EQ(Dataset().dims(), 0);
}

// Restores SRN_DATA_DIR after the test so the order of tests does not matter.
class DataDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* old = std::getenv("SRN_DATA_DIR");
    had_ = old != nullptr;
    if (had_) old_ = old;
  }
  void TearDown() override {
    if (had_) {
      setenv("SRN_DATA_DIR", old_.c_str(), 1);
    } else {
      unsetenv("SRN_DATA_DIR");
    }
  }
  bool had_ = false;
  std::string old_;
};

TEST_F(DataDirTest, EnvironmentOverridesTheDefault) {
  setenv("SRN_DATA_DIR", "/somewhere/data", 1);
  EXPECT_EQ(DataDir(), "/somewhere/data");
}

TEST_F(DataDirTest, UnsetOrEmptyMeansTheBuildDefault) {
  unsetenv("SRN_DATA_DIR");
  const std::string fallback = DataDir();
  EXPECT_FALSE(fallback.empty());
  setenv("SRN_DATA_DIR", "", 1);
  EXPECT_EQ(DataDir(), fallback);
}

}  // namespace
}  // namespace srn
