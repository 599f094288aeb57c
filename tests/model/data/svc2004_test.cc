#include "model/data/svc2004.h"

#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/scratch_dir.h"
#include "tests/testing/test_data.h"

namespace srn {
namespace {

using ::testing::HasSubstr;

class Svc2004Test : public testing::ScratchDirTest {
 protected:
  std::string MakeTempDir() const { return dir(); }
};

TEST_F(Svc2004Test, ReadsSamplesRelativeToTheFirstTimestamp) {
  const std::string dir = MakeTempDir();
  const std::string path = Write("U1S1.TXT",
                                 "4\n"
                                 "2933 5678 31275775 0 1550 710 439\n"
                                 "2940 5690 31275785 1 1480 770 420\n"
                                 "3001 5851 31275825 2 1350 830 0\n"
                                 "3114 6139 31275835 3 1350 800 422\n");
  bool has_pressure = false;
  absl::StatusOr<std::vector<PenSample>> s = ReadSvc2004File(path, &has_pressure);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(has_pressure);
  ASSERT_EQ(s->size(), 4u);
  EXPECT_EQ((*s)[0].x, 2933);
  EXPECT_EQ((*s)[0].y, 5678);
  EXPECT_EQ((*s)[0].t_ms, 0);
  EXPECT_EQ((*s)[0].pressure, 439);
  EXPECT_TRUE((*s)[0].stroke_start);
  EXPECT_EQ((*s)[1].t_ms, 10);
  EXPECT_FALSE((*s)[1].stroke_start);
  EXPECT_EQ((*s)[2].t_ms, 50);
  EXPECT_TRUE((*s)[2].stroke_start);   // button 2: even, a new stroke
  EXPECT_FALSE((*s)[3].stroke_start);  // button 3: odd, pen down
  EXPECT_EQ((*s)[3].x, 3114);
  EXPECT_EQ((*s)[3].pressure, 422);
}

TEST_F(Svc2004Test, FourColumnFilesHaveNoPressure) {
  const std::string dir = MakeTempDir();
  const std::string path = Write("t1.txt", "2\n1 2 100 0\n3 4 110 1\n\n");
  bool has_pressure = true;
  absl::StatusOr<std::vector<PenSample>> s = ReadSvc2004File(path, &has_pressure);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(has_pressure);
  ASSERT_EQ(s->size(), 2u);
  EXPECT_EQ((*s)[1].pressure, 0);
  EXPECT_EQ((*s)[1].t_ms, 10);
  EXPECT_TRUE(ReadSvc2004File(path).ok());  // has_pressure is optional
}

TEST(ParseSvc2004FileTest, ParsesContentInMemoryNamingTheGivenName) {
  bool has_pressure = true;
  absl::StatusOr<std::vector<PenSample>> s =
      ParseSvc2004File("2\n1 2 100 0\n3 4 110 1\n", "upload", &has_pressure);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(has_pressure);
  ASSERT_EQ(s->size(), 2u);
  EXPECT_EQ((*s)[1].t_ms, 10);
  const absl::Status bad = ParseSvc2004File("2\n1 2 100 0\n", "upload").status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.message()), HasSubstr("upload:2: line 1 announces 2 samples"));
}

TEST_F(Svc2004Test, MalformedFilesNameFileAndLine) {
  const std::string dir = MakeTempDir();
  struct Case {
    const char* text;
    const char* where;  // expected "<path>:<line>:" suffix
    const char* what;
  };
  const Case cases[] = {
      {"", ":1:", "empty"},
      {"abc\n1 2 3 0 0 0 1\n", ":1:", "'abc'"},
      {"0\n", ":1:", "number of samples"},
      {"2 3\n1 2 3 0 0 0 1\n", ":1:", "number of samples"},
      {"2\n1 2 3 0 0 0 1\n1 2 3 0 0 1\n", ":3:", "expected 7 integers"},
      {"2\n1 2 3 0 0\n1 2 3 0 0\n", ":2:", "found 5"},
      {"2\n1 2 3 0 0 0 1\n1 2.5 3 0 0 0 1\n", ":3:", "'2.5' is not an integer"},
      {"1\n1 2 3 0 0 0 1\n1 2 3 0 0 0 1\n", ":3:", "more sample lines"},
      {"3\n1 2 3 0 0 0 1\n1 2 3 0 0 0 1\n", ":3:", "announces 3 samples but the file has 2"},
      // Task 1's 4-integer layout.
      {"2\n1 2 3\n1 2 3 0\n", ":2:", "found 3"},
      {"2\n1 2 3 0\n1 2 3\n", ":3:", "expected 4 integers (as on line 2), found 3"},
      {"2\n1 2 3 0\n1 2 3 0 0 0 1\n", ":3:", "expected 4 integers (as on line 2), found 7"},
      {"2\n1 2 3 0\n1 2 x 0\n", ":3:", "'x' is not an integer"},
      {"3\n1 2 3 0\n1 2 13 1\n", ":3:", "announces 3 samples but the file has 2"},
      {"1\n1 2 3 0\n1 2 13 1\n", ":3:", "more sample lines than the 1"},
  };
  for (const Case& c : cases) {
    const std::string path = Write("bad.TXT", c.text);
    absl::Status status = ReadSvc2004File(path).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(std::string(status.message()), HasSubstr(path + c.where)) << c.text;
    EXPECT_THAT(std::string(status.message()), HasSubstr(c.what)) << c.text;
  }
}

TEST_F(Svc2004Test, MissingFilesAreNotFound) {
  const std::string dir = MakeTempDir();
  absl::Status status = ReadSvc2004File(dir + "/U9S9.TXT").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(status.message()), HasSubstr("U9S9.TXT"));
  status = LoadSvc2004(dir).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(status.message()), HasSubstr("U1S1.TXT"));
}

TEST_F(Svc2004Test, RejectsUnknownUsers) {
  const std::vector<int> users = {0};
  EXPECT_EQ(LoadSvc2004Users("/nonexistent", users).status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::vector<int> too_big = {41};
  EXPECT_EQ(LoadSvc2004Users("/nonexistent", too_big).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(Svc2004Test, FeatureErrorsNameTheFile) {
  const std::string dir = MakeTempDir();
  for (int s = 1; s <= 40; ++s) {
    Write("U2S" + std::to_string(s) + ".TXT",
          s == 7 ? "2\n5 5 0 0 0 0 1\n5 5 10 1 0 0 1\n"  // a single point: zero
                                                         // radius
                 : "2\n5 5 0 0 0 0 1\n6 5 10 1 0 0 1\n");
  }
  const std::vector<int> users = {2};
  absl::Status status = LoadSvc2004Users(dir, users).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("U2S7.TXT: "));
}

TEST_F(Svc2004Test, Task1RejectsTask2Files) {
  for (int s = 1; s <= 40; ++s) {
    Write("U1S" + std::to_string(s) + ".TXT",
          s == 3 ? "2\n5 5 0 0 0 0 1\n6 5 10 1 0 0 1\n" : "2\n5 5 0 0\n6 5 10 1\n");
  }
  absl::Status status = LoadSvc2004Task1(dir()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("U1S3.TXT: has Task 2's layout"));
}

TEST_F(Svc2004Test, Task1ErrorsNameTheFile) {
  for (int s = 1; s <= 40; ++s) {
    Write("U1S" + std::to_string(s) + ".TXT",
          s == 9 ? "2\n5 5 0 0\n6 5 10\n" : "2\n5 5 0 0\n6 5 10 1\n");
  }
  absl::Status status = LoadSvc2004Task1(dir()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("U1S9.TXT:3: expected 4 integers"));
  status = LoadSvc2004Task1(dir() + "/nowhere").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(status.message()), HasSubstr("U1S1.TXT"));
}

TEST(Svc2004RealDataTest, LoadsAllUsers) {
  SRN_REQUIRE_DATA(dir, "svc2004/Task2");
  absl::StatusOr<Dataset> d = LoadSvc2004(dir);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->name, "svc2004");
  ASSERT_EQ(d->examples.size(), 1600u);
  ASSERT_EQ(d->num_labels(), 40);
  EXPECT_EQ(d->label_names[0], "U1");
  EXPECT_EQ(d->label_names[39], "U40");
  EXPECT_EQ(d->dims(), kSignatureFeatureDims);
  int forgeries = 0;
  std::vector<int> per_user(40, 0);
  for (const Example& e : d->examples) {
    ASSERT_GE(e.label, 0);
    ASSERT_LT(e.label, 40);
    ++per_user[e.label];
    forgeries += e.forgery;
    EXPECT_EQ(e.forgery, e.group > 20) << e.source;
    EXPECT_EQ(e.series.dims(), kSignatureFeatureDims);
    EXPECT_TRUE(ValidateSeries(e.series).ok()) << e.source;
  }
  EXPECT_EQ(forgeries, 800);
  for (int u = 0; u < 40; ++u) EXPECT_EQ(per_user[u], 40) << u;

  const Example& u1s1 = d->examples[0];
  EXPECT_EQ(u1s1.label, 0);
  EXPECT_EQ(u1s1.group, 1);
  EXPECT_FALSE(u1s1.forgery);
  EXPECT_THAT(u1s1.source, ::testing::EndsWith("U1S1.TXT"));
  EXPECT_EQ(u1s1.series.length(), 84);
  EXPECT_EQ(u1s1.series.frames()(0, 11), 1.0f);  // first sample starts a stroke
  EXPECT_GT(u1s1.series.frames()(0, 9),
            0.0f);                       // pressure 439 of the signature's max
  EXPECT_EQ(d->examples[20].group, 21);  // U1S21: the first forgery
  EXPECT_TRUE(d->examples[20].forgery);
}

TEST(Svc2004RealDataTest, ReadsTheFirstFile) {
  SRN_REQUIRE_DATA(path, "svc2004/Task2/U1S1.TXT");
  bool has_pressure = false;
  absl::StatusOr<std::vector<PenSample>> s = ReadSvc2004File(path, &has_pressure);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(has_pressure);
  ASSERT_EQ(s->size(), 84u);
  // "2933 5678 31275775 0 1550 710 439" then "2933 5678 31275785 1 1480 770
  // 420".
  EXPECT_EQ((*s)[0].x, 2933);
  EXPECT_EQ((*s)[0].y, 5678);
  EXPECT_EQ((*s)[0].t_ms, 0);
  EXPECT_EQ((*s)[0].pressure, 439);
  EXPECT_TRUE((*s)[0].stroke_start);
  EXPECT_EQ((*s)[1].t_ms, 10);
  EXPECT_EQ((*s)[1].pressure, 420);
  EXPECT_FALSE((*s)[1].stroke_start);
}

TEST(Svc2004RealDataTest, LoadsASubsetWithStableLabels) {
  SRN_REQUIRE_DATA(dir, "svc2004/Task2");
  const std::vector<int> users = {3, 40};
  absl::StatusOr<Dataset> d = LoadSvc2004Users(dir, users);
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(d->examples.size(), 80u);
  EXPECT_EQ(d->num_labels(), 40);
  EXPECT_EQ(d->examples[0].label, 2);
  EXPECT_EQ(d->examples[79].label, 39);
  EXPECT_EQ(d->examples[79].group, 40);
  EXPECT_THAT(d->examples[79].source, ::testing::EndsWith("U40S40.TXT"));
}

// Task1/SOURCE.md: 40 users x (20 genuine + 20 skilled forgeries), x y time button only.
TEST(Svc2004RealDataTest, LoadsTask1) {
  SRN_REQUIRE_DATA(dir, "svc2004/Task1");
  absl::StatusOr<Dataset> d = LoadSvc2004Task1(dir);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->name, "svc2004-task1");
  ASSERT_EQ(d->examples.size(), 1600u);
  ASSERT_EQ(d->num_labels(), 40);
  EXPECT_EQ(d->label_names[0], "U1");
  EXPECT_EQ(d->label_names[39], "U40");
  EXPECT_EQ(d->dims(), kSignatureFeatureDims);
  int forgeries = 0;
  std::vector<int> genuine(40, 0), forged(40, 0);
  for (const Example& e : d->examples) {
    ASSERT_GE(e.label, 0);
    ASSERT_LT(e.label, 40);
    // The label is the user of the file name, for a forgery the forged user.
    EXPECT_THAT(e.source, ::testing::EndsWith(absl::StrCat("/U", e.label + 1, "S", e.group,
                                                           ".TXT")));
    EXPECT_EQ(e.forgery, e.group > 20) << e.source;
    ++(e.forgery ? forged : genuine)[e.label];
    forgeries += e.forgery;
    EXPECT_EQ(e.series.dims(), kSignatureFeatureDims);
    EXPECT_TRUE(ValidateSeries(e.series).ok()) << e.source;
    EXPECT_TRUE(e.series.frames().allFinite()) << e.source;
    // No pressure column: pressure and its derivative are 0 throughout.
    EXPECT_EQ(e.series.frames().col(9).cwiseAbs().maxCoeff(), 0.0f) << e.source;
    EXPECT_EQ(e.series.frames().col(10).cwiseAbs().maxCoeff(), 0.0f) << e.source;
  }
  EXPECT_EQ(forgeries, 800);
  for (int u = 0; u < 40; ++u) {
    EXPECT_EQ(genuine[u], 20) << u;
    EXPECT_EQ(forged[u], 20) << u;
  }
  // U1S1.TXT: 148 samples (Task 2's U1S1 has 84: another recording).
  EXPECT_EQ(d->examples[0].series.length(), 148);
  // U25S10.TXT (user 25 with ButtonStatus 2 and 3): 187 samples, 24 with an even status, the
  // first among them, so 24 stroke starts.
  const Example& u25s10 = d->examples[24 * 40 + 9];
  EXPECT_THAT(u25s10.source, ::testing::EndsWith("/U25S10.TXT"));
  EXPECT_EQ(u25s10.series.length(), 187);
  EXPECT_EQ(u25s10.series.frames().col(11).sum(), 24.0f);
}

TEST(Svc2004RealDataTest, ReadsTheFirstTask1File) {
  SRN_REQUIRE_DATA(path, "svc2004/Task1/U1S1.TXT");
  bool has_pressure = true;
  absl::StatusOr<std::vector<PenSample>> s = ReadSvc2004File(path, &has_pressure);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(has_pressure);
  ASSERT_EQ(s->size(), 148u);
  // "635 5541 31077710 0", "618 5431 31077720 1", ..., last "7407 3578 31080223 1".
  EXPECT_EQ((*s)[0].x, 635);
  EXPECT_EQ((*s)[0].y, 5541);
  EXPECT_TRUE((*s)[0].stroke_start);
  EXPECT_EQ((*s)[1].x, 618);
  EXPECT_EQ((*s)[1].t_ms, 10);
  EXPECT_FALSE((*s)[1].stroke_start);
  EXPECT_EQ(s->back().x, 7407);
  EXPECT_EQ(s->back().t_ms, 31080223 - 31077710);
}

}  // namespace
}  // namespace srn
