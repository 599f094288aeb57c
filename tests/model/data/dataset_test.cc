#include "model/data/dataset.h"

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
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

// A dataset of `signers` signers with one genuine signature each and a forgery of the last.
Dataset Signers(const std::string& name, int signers, int dims) {
  Dataset d;
  d.name = name;
  for (int l = 0; l < signers; ++l) {
    d.label_names.push_back(absl::StrCat("U", l + 1));
    Example e;
    e.series = Series(2, dims);
    e.label = l;
    e.source = absl::StrCat(name, ":", l);
    d.examples.push_back(e);
  }
  Example forgery = d.examples.back();
  forgery.forgery = true;
  forgery.source += ":forged";
  d.examples.push_back(forgery);
  return d;
}

TEST(MergeDatasetsTest, LabelRangesAreDisjointAndForgeriesKeepTheirSigner) {
  const Dataset a = Signers("svc2004", 3, 12), b = Signers("sigcomp2009-nisdcc", 2, 12);
  absl::StatusOr<Dataset> merged = MergeDatasets({a, b});
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_EQ(merged->name, "svc2004+sigcomp2009-nisdcc");
  EXPECT_THAT(merged->label_names,
              ::testing::ElementsAre("svc2004/U1", "svc2004/U2", "svc2004/U3",
                                     "sigcomp2009-nisdcc/U1", "sigcomp2009-nisdcc/U2"));
  ASSERT_EQ(merged->examples.size(), a.examples.size() + b.examples.size());
  EXPECT_EQ(merged->dims(), 12);
  // a's examples keep their labels; b's are shifted past a's 3 signers.
  for (size_t i = 0; i < a.examples.size(); ++i) {
    EXPECT_EQ(merged->examples[i].label, a.examples[i].label);
    EXPECT_EQ(merged->examples[i].source, a.examples[i].source);
  }
  for (size_t i = 0; i < b.examples.size(); ++i) {
    const Example& e = merged->examples[a.examples.size() + i];
    EXPECT_EQ(e.label, b.examples[i].label + 3);
    EXPECT_EQ(e.forgery, b.examples[i].forgery);
    EXPECT_EQ(e.source, b.examples[i].source);
  }
  // Each forgery is still attached to its own dataset's signer, by name.
  for (const Example& e : merged->examples) {
    if (!e.forgery) continue;
    const std::string& signer = merged->label_names[e.label];
    EXPECT_TRUE(signer == "svc2004/U3" || signer == "sigcomp2009-nisdcc/U2") << signer;
    EXPECT_EQ(e.source.substr(0, e.source.find(':')), signer.substr(0, signer.find('/')));
  }
}

TEST(MergeDatasetsTest, OneDatasetOnlyRenamesItsLabels) {
  absl::StatusOr<Dataset> merged = MergeDatasets({Signers("x", 2, 3)});
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_EQ(merged->name, "x");
  EXPECT_THAT(merged->label_names, ::testing::ElementsAre("x/U1", "x/U2"));
  EXPECT_EQ(merged->examples.back().label, 1);
}

TEST(MergeDatasetsTest, RejectsDifferentFeatureDimsAndEmptyInput) {
  absl::StatusOr<Dataset> merged = MergeDatasets({Signers("a", 2, 12), Signers("b", 2, 10)});
  EXPECT_EQ(merged.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(merged.status().message()), ::testing::HasSubstr("feature dims"));
  EXPECT_EQ(MergeDatasets({}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MergeDatasets({Signers("a", 2, 12), Dataset{"empty", {}, {}}}).status().code(),
            absl::StatusCode::kInvalidArgument);
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
