#include "model/data/csv_dataset.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/scratch_dir.h"

namespace srn {
namespace {

using ::testing::HasSubstr;

class CsvDatasetTest : public testing::ScratchDirTest {
 protected:
  // Expects `status` to be `code` with a message containing `text`.
  static void ExpectError(const absl::Status& status, absl::StatusCode code,
                          const std::string& text) {
    EXPECT_EQ(status.code(), code) << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr(text));
  }
};

TEST_F(CsvDatasetTest, ReadsSeriesWithHeaderCommentsAndBlankLines) {
  const std::string path = Write("s.csv",
                                 "# recorded 2024-01-01\n"
                                 "x, y ,z\n"
                                 "\n"
                                 "1, 2.5, -3\r\n"
                                 "  # a comment after data\n"
                                 "4e-1,\t5,6\n"
                                 "   \n");
  absl::StatusOr<Series> s = ReadCsvSeries(path);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->length(), 2);
  ASSERT_EQ(s->dims(), 3);
  EXPECT_EQ(s->frames()(0, 0), 1.0f);
  EXPECT_EQ(s->frames()(0, 1), 2.5f);
  EXPECT_EQ(s->frames()(0, 2), -3.0f);
  EXPECT_FLOAT_EQ(s->frames()(1, 0), 0.4f);
  EXPECT_EQ(s->frames()(1, 2), 6.0f);
}

TEST_F(CsvDatasetTest, SeriesWithoutHeaderAndSingleColumn) {
  absl::StatusOr<Series> s = ReadCsvSeries(Write("one.csv", "1\n2\n3"));  // no final newline
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->length(), 3);
  EXPECT_EQ(s->dims(), 1);
  EXPECT_EQ(s->frames()(2, 0), 3.0f);
}

TEST(ParseCsvTest, ParsesSeriesAndManifestsInMemory) {
  absl::StatusOr<Series> s = ParseCsvSeries("x,y\n1,2\n3,4\n", "upload");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->length(), 2);
  EXPECT_EQ(s->frames()(1, 1), 4.0f);
  absl::Status bad = ParseCsvSeries("1,2\n3\n", "upload").status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.message()), HasSubstr("upload:2: expected 2 values"));

  absl::StatusOr<std::vector<CsvManifestRow>> rows =
      ParseCsvManifest("path,label\na.csv,x\n/abs/b.csv,y\n", "data/m.csv");
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].path, "data/a.csv");  // relative to the manifest's folder
  EXPECT_EQ((*rows)[1].path, "/abs/b.csv");
  bad = ParseCsvManifest("path,label\na.csv,\n", "data/m.csv").status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.message()), HasSubstr("data/m.csv:2: label is empty"));
}

TEST_F(CsvDatasetTest, MalformedSeriesNameFileAndLine) {
  std::string path = Write("cols.csv", "a,b\n1,2\n\n3,4,5\n");
  ExpectError(ReadCsvSeries(path).status(), absl::StatusCode::kInvalidArgument,
              path + ":4: expected 2 values (as on line 2), found 3");
  path = Write("nan.csv", "1,2\n3,abc\n");
  ExpectError(ReadCsvSeries(path).status(), absl::StatusCode::kInvalidArgument,
              path + ":2: value 2 ('abc') is not a decimal number");
  // Only decimal numbers, as docs/DATA_FORMATS.md says: no hexadecimal, no words.
  for (const std::string bad : {"0x1F", "1e", "+", ".", "1.5.2", "infinity", "1_000", "e5"}) {
    path = Write("strict.csv", "1,2\n3," + bad + "\n");
    ExpectError(ReadCsvSeries(path).status(), absl::StatusCode::kInvalidArgument,
                path + ":2: value 2 ('" + bad + "') is not a decimal number");
  }
  absl::StatusOr<Series> decimal =
      ReadCsvSeries(Write("decimal.csv", "-1.5,2e-3,+4,.5,7.,1E+2\n"));
  ASSERT_TRUE(decimal.ok()) << decimal.status();
  EXPECT_EQ(decimal->frames()(0, 5), 100.0f);
  // A header names every column: a column more (or less) in the data is an error.
  path = Write("extra.csv", "x,y\n1,2,3\n4,5,6\n");
  ExpectError(ReadCsvSeries(path).status(), absl::StatusCode::kInvalidArgument,
              path + ":2: 3 values, but the header on line 1 names 2 columns");
  // A first line with any number in it is data, not a header.
  path = Write("typo.csv", "1,x\n3,4\n");
  ExpectError(ReadCsvSeries(path).status(), absl::StatusCode::kInvalidArgument, path + ":1:");
  path = Write("second_header.csv", "a,b\nc,d\n");
  ExpectError(ReadCsvSeries(path).status(), absl::StatusCode::kInvalidArgument, path + ":2:");
  path = Write("empty_value.csv", "1,,3\n");
  ExpectError(ReadCsvSeries(path).status(), absl::StatusCode::kInvalidArgument,
              path + ":1: value 2 is empty");
  path = Write("inf.csv", "1,2\n1e60,3\n");
  ExpectError(ReadCsvSeries(path).status(), absl::StatusCode::kInvalidArgument,
              path + ":2: value 1 ('1e60') is not finite");
  path = Write("nanword.csv", "1,2\nnan,3\n");
  ExpectError(ReadCsvSeries(path).status(), absl::StatusCode::kInvalidArgument, path + ":2:");
  path = Write("header_only.csv", "# nothing\nx,y\n\n");
  ExpectError(ReadCsvSeries(path).status(), absl::StatusCode::kInvalidArgument,
              path + ": no frames");
  ExpectError(ReadCsvSeries(Write("empty.csv", "")).status(), absl::StatusCode::kInvalidArgument,
              "no frames");
  ExpectError(ReadCsvSeries(dir() + "/missing.csv").status(), absl::StatusCode::kNotFound,
              dir() + "/missing.csv");
  ExpectError(ReadCsvSeries(dir()).status(), absl::StatusCode::kInvalidArgument,
              "not a regular file");
}

TEST_F(CsvDatasetTest, SeriesLimits) {
  const std::string path = Write("big.csv", "1,2,3\n4,5,6\n7,8,9\n");
  ExpectError(ReadCsvSeries(path, SeriesLimits{2, 10}).status(),
              absl::StatusCode::kInvalidArgument, path + ":3:");
  ExpectError(ReadCsvSeries(path, SeriesLimits{10, 2}).status(),
              absl::StatusCode::kInvalidArgument, path + ":1:");
  EXPECT_TRUE(ReadCsvSeries(path, SeriesLimits{3, 3}).ok());
}

TEST_F(CsvDatasetTest, LoadsAManifestRoundTrip) {
  Write("alice/1.csv", "t,value\n0,1\n1,2\n");
  Write("alice/2.csv", "0,1.5\n1,2.5\n2,3.5\n");
  const std::string absolute = Write("elsewhere/bob.csv", "0,9\n");
  const std::string manifest = Write("manifest.csv",
                                     "path,label,forgery\n"
                                     "alice/1.csv,alice,0\n"
                                     "# bob's only one\n"
                                     "\n" +
                                         absolute + ", bob ,1\n"
                                                    "alice/2.csv,alice,1\n");
  absl::StatusOr<Dataset> d = LoadCsvDataset(manifest);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->name, manifest);
  ASSERT_EQ(d->num_labels(), 2);
  EXPECT_EQ(d->label_names[0], "alice");
  EXPECT_EQ(d->label_names[1], "bob");
  EXPECT_EQ(d->dims(), 2);
  ASSERT_EQ(d->examples.size(), 3u);
  EXPECT_EQ(d->examples[0].label, 0);
  EXPECT_FALSE(d->examples[0].forgery);
  EXPECT_EQ(d->examples[0].series.length(), 2);
  EXPECT_EQ(d->examples[0].source, dir() + "/alice/1.csv");
  EXPECT_EQ(d->examples[0].group, -1);
  EXPECT_EQ(d->examples[1].label, 1);
  EXPECT_TRUE(d->examples[1].forgery);
  EXPECT_EQ(d->examples[1].source, absolute);
  EXPECT_EQ(d->examples[1].series.frames()(0, 1), 9.0f);
  EXPECT_EQ(d->examples[2].label, 0);
  EXPECT_TRUE(d->examples[2].forgery);
  EXPECT_EQ(d->examples[2].series.length(), 3);
  EXPECT_EQ(d->examples[2].series.frames()(2, 1), 3.5f);
}

// The worked example of docs/DATA_FORMATS.md, verbatim.
TEST_F(CsvDatasetTest, DocumentedExample) {
  Write("pens/manifest.csv",
        "path,label,forgery\n"
        "# genuine signature of alice\n"
        "alice_1.csv,alice,0\n"
        "# someone imitating alice\n"
        "alice_fake.csv,alice,1\n");
  Write("pens/alice_1.csv", "x,y\n0.0,1.0\n0.5,1.5\n1.0,1.25\n");
  Write("pens/alice_fake.csv", "# recorded on tablet B\n0.1,0.9\n0.7,1.6\n");
  absl::StatusOr<Dataset> d = LoadCsvDataset(dir() + "/pens/manifest.csv");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->label_names, std::vector<std::string>{"alice"});
  ASSERT_EQ(d->examples.size(), 2u);
  EXPECT_EQ(d->examples[0].label, 0);
  EXPECT_FALSE(d->examples[0].forgery);
  EXPECT_EQ(d->examples[0].series.length(), 3);
  EXPECT_EQ(d->examples[0].series.frames()(2, 1), 1.25f);
  EXPECT_EQ(d->examples[1].label, 0);
  EXPECT_TRUE(d->examples[1].forgery);
  EXPECT_EQ(d->examples[1].series.length(), 2);
  EXPECT_EQ(d->dims(), 2);
}

TEST_F(CsvDatasetTest, AcceptsSignedAndExponentNumbers) {
  absl::StatusOr<Series> s = ReadCsvSeries(Write("n.csv", "+4,-1.5,2e-3,.5\n"));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->frames()(0, 0), 4.0f);
  EXPECT_EQ(s->frames()(0, 1), -1.5f);
  EXPECT_FLOAT_EQ(s->frames()(0, 2), 0.002f);
  EXPECT_EQ(s->frames()(0, 3), 0.5f);
  // A trailing comment is not part of the format.
  const std::string path = Write("c.csv", "1,2 # note\n");
  ExpectError(ReadCsvSeries(path).status(), absl::StatusCode::kInvalidArgument, path + ":1:");
}

TEST_F(CsvDatasetTest, TwoColumnManifestHasNoForgeries) {
  Write("a.csv", "1\n2\n");
  const std::string manifest = Write("m.csv", "PATH,Label\na.csv,7\na.csv,3\na.csv,7\n");
  absl::StatusOr<Dataset> d = LoadCsvDataset(manifest);
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(d->examples.size(), 3u);
  EXPECT_EQ(d->label_names, (std::vector<std::string>{"7", "3"}));
  EXPECT_EQ(d->examples[2].label, 0);
  for (const Example& e : d->examples) EXPECT_FALSE(e.forgery);
}

TEST_F(CsvDatasetTest, ReadsManifestRowsWithTheHeaderInAnyCase) {
  for (const std::string header :
       {"path,label,forgery", "Path,Label,Forgery", "PATH , label,FORGERY"}) {
    SCOPED_TRACE(header);
    const std::string manifest =
        Write("rows.csv", header + "\n# comment\n\na.csv, x ,0\n/abs/b.csv,y,1\n");
    absl::StatusOr<std::vector<CsvManifestRow>> rows = ReadCsvManifest(manifest);
    ASSERT_TRUE(rows.ok()) << rows.status();  // the series files (absent here) are not read
    ASSERT_EQ(rows->size(), 2u);
    EXPECT_EQ((*rows)[0].path, dir() + "/a.csv");  // relative to the manifest's folder
    EXPECT_EQ((*rows)[0].label, "x");
    EXPECT_FALSE((*rows)[0].forgery);
    EXPECT_EQ((*rows)[0].line, 4);
    EXPECT_EQ((*rows)[1].path, "/abs/b.csv");
    EXPECT_EQ((*rows)[1].label, "y");
    EXPECT_TRUE((*rows)[1].forgery);
    EXPECT_EQ((*rows)[1].line, 5);
  }
  // Case aside, the header's names must be these.
  const std::string bad = Write("bad_header.csv", "Path,Labels\na.csv,x\n");
  ExpectError(ReadCsvManifest(bad).status(), absl::StatusCode::kInvalidArgument,
              bad + ":1: expected the header");
}

TEST_F(CsvDatasetTest, ManifestErrors) {
  Write("a.csv", "1,2\n");
  Write("b.csv", "1,2,3\n");
  Write("bad.csv", "1,2\n1\n");
  ExpectError(LoadCsvDataset(dir() + "/nope.csv").status(), absl::StatusCode::kNotFound,
              dir() + "/nope.csv");
  std::string m = Write("empty.csv", "");
  ExpectError(LoadCsvDataset(m).status(), absl::StatusCode::kInvalidArgument,
              m + ": empty manifest");
  m = Write("header_only.csv", "path,label\n# nothing yet\n");
  ExpectError(LoadCsvDataset(m).status(), absl::StatusCode::kInvalidArgument,
              m + ": the manifest lists no series");
  m = Write("no_header.csv", "a.csv,x\n");
  ExpectError(LoadCsvDataset(m).status(), absl::StatusCode::kInvalidArgument,
              m + ":1: expected the header");
  m = Write("forgery.csv", "path,label,forgery\na.csv,x,0\na.csv,x,yes\n");
  ExpectError(LoadCsvDataset(m).status(), absl::StatusCode::kInvalidArgument,
              m + ":3: forgery must be 0 or 1, found 'yes'");
  m = Write("fields.csv", "path,label\na.csv,x,1\n");
  ExpectError(LoadCsvDataset(m).status(), absl::StatusCode::kInvalidArgument,
              m + ":2: expected 2 comma-separated fields, found 3");
  m = Write("no_label.csv", "path,label\na.csv, \n");
  ExpectError(LoadCsvDataset(m).status(), absl::StatusCode::kInvalidArgument,
              m + ":2: label is empty");
  m = Write("no_path.csv", "path,label\n,x\n");
  ExpectError(LoadCsvDataset(m).status(), absl::StatusCode::kInvalidArgument,
              m + ":2: path is empty");
  m = Write("missing.csv", "path,label\na.csv,x\ngone.csv,y\n");
  ExpectError(LoadCsvDataset(m).status(), absl::StatusCode::kNotFound,
              m + ":3: " + dir() + "/gone.csv");
  m = Write("badseries.csv", "path,label\nbad.csv,x\n");
  ExpectError(LoadCsvDataset(m).status(), absl::StatusCode::kInvalidArgument,
              m + ":2: " + dir() + "/bad.csv:2: expected 2 values");
  m = Write("dims.csv", "path,label\na.csv,x\n\nb.csv,y\n");
  ExpectError(LoadCsvDataset(m).status(), absl::StatusCode::kInvalidArgument,
              m + ":4: " + dir() + "/b.csv has 3 values per frame but " + dir() +
                  "/a.csv (line 2) has 2");
}

}  // namespace
}  // namespace srn
