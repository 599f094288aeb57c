#include "client/series_files.h"

#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/e2e_harness.h"

namespace srn {
namespace {

using ::srn::testing::TempDir;
using ::srn::testing::WriteFile;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(ParseSeriesFormat, Names) {
  EXPECT_EQ(*ParseSeriesFormat("auto"), SeriesFormat::kAuto);
  EXPECT_EQ(*ParseSeriesFormat("csv"), SeriesFormat::kCsv);
  EXPECT_EQ(*ParseSeriesFormat("svc"), SeriesFormat::kSvc);
  absl::StatusOr<SeriesFormat> bad = ParseSeriesFormat("CSV");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("'CSV'"));
  EXPECT_EQ(SeriesFormatName(SeriesFormat::kSvc), "svc");
}

TEST(DetectSeriesFormat, SvcNeedsACountLineThenIntegerSampleLines) {
  EXPECT_EQ(DetectSeriesFormat("2\n1 2 3 0 5 6 7\n4 5 6 1 5 6 7\n"), SeriesFormat::kSvc);
  EXPECT_EQ(DetectSeriesFormat("\n  2\r\n1\t2 3 0\r\n4 5 6 1\r\n"),
            SeriesFormat::kSvc);  // Task 1, CRLF
  EXPECT_EQ(DetectSeriesFormat("2\n-1 2 3 0 5 6 7\n"), SeriesFormat::kSvc);
  // CSV: commas, a header, floats, a single column, 3 or 5 numbers per line, one line only.
  EXPECT_EQ(DetectSeriesFormat("1,2,3,4\n5,6,7,8\n"), SeriesFormat::kCsv);
  EXPECT_EQ(DetectSeriesFormat("2\n1,2,3,4\n"), SeriesFormat::kCsv);
  EXPECT_EQ(DetectSeriesFormat("x,y\n1,2\n"), SeriesFormat::kCsv);
  EXPECT_EQ(DetectSeriesFormat("2\n1.5 2 3 0\n"), SeriesFormat::kCsv);
  EXPECT_EQ(DetectSeriesFormat("3\n1\n2\n3\n"), SeriesFormat::kCsv);
  EXPECT_EQ(DetectSeriesFormat("2\n1 2 3\n"), SeriesFormat::kCsv);
  EXPECT_EQ(DetectSeriesFormat("2\n1 2 3 4 5\n"), SeriesFormat::kCsv);
  EXPECT_EQ(DetectSeriesFormat("2 3\n1 2 3 4\n"), SeriesFormat::kCsv);
  EXPECT_EQ(DetectSeriesFormat("7\n"), SeriesFormat::kCsv);
  EXPECT_EQ(DetectSeriesFormat(""), SeriesFormat::kCsv);
}

class ReadSeriesInputTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& content) {
    const std::string path = dir_.File(name);
    EXPECT_TRUE(WriteFile(path, content));
    return path;
  }
  TempDir dir_;
};

TEST_F(ReadSeriesInputTest, CsvBecomesFrames) {
  const std::string path = Write("a.csv", "# comment\nf1,f2\n1,2\n3.5, -4\n");
  absl::StatusOr<v1::SeriesInput> input = ReadSeriesInput(path);
  ASSERT_TRUE(input.ok()) << input.status();
  ASSERT_TRUE(input->has_frames());
  EXPECT_EQ(input->frames().num_features(), 2);
  EXPECT_THAT(input->frames().values(), ElementsAre(1, 2, 3.5, -4));
}

TEST_F(ReadSeriesInputTest, SvcBecomesAPenTrajectory) {
  // Task 2 layout: X Y T Button Azimuth Altitude Pressure; button 0 starts a stroke.
  const std::string path =
      Write("U1S1.TXT", "3\n10 20 1000 1 0 0 100\n11 22 1010 0 0 0 0\n13 25 1030 1 0 0 300\n");
  absl::StatusOr<v1::SeriesInput> input = ReadSeriesInput(path);
  ASSERT_TRUE(input.ok()) << input.status();
  ASSERT_TRUE(input->has_pen());
  const v1::PenTrajectory& pen = input->pen();
  EXPECT_THAT(pen.x(), ElementsAre(10, 11, 13));
  EXPECT_THAT(pen.y(), ElementsAre(20, 22, 25));
  EXPECT_THAT(pen.t_ms(), ElementsAre(0, 10, 30));  // relative to the first sample
  EXPECT_THAT(pen.pressure(), ElementsAre(100, 0, 300));
  EXPECT_THAT(pen.stroke_start(), ElementsAre(false, true, false));
}

TEST_F(ReadSeriesInputTest, SvcWithoutPressureSendsNoPressure) {
  const std::string path = Write("task1.txt", "2\n10 20 1000 1\n11 22 1010 1\n");
  absl::StatusOr<v1::SeriesInput> input = ReadSeriesInput(path, SeriesFormat::kSvc);
  ASSERT_TRUE(input.ok()) << input.status();
  EXPECT_EQ(input->pen().x_size(), 2);
  EXPECT_EQ(input->pen().pressure_size(),
            0);  // absent, not zeros: the server then ignores pressure
  EXPECT_EQ(input->pen().stroke_start_size(), 2);
}

TEST_F(ReadSeriesInputTest, HwrBecomesAPenTrajectoryAt200HzWithoutHoverRows) {
  // SigComp2009: X Y P Az Alt at 200 Hz; P = 0 hovers (pen up), so the third row is dropped and
  // the fourth starts a new stroke, 15 ms after the first.
  const std::string content =
      "NLDCC-001_001_001 4\n10 20 300 0 0\n11 22 310 0 0\n12 23 0 0 0\n15 26 320 0 0\n";
  EXPECT_EQ(DetectSeriesFormat(content), SeriesFormat::kHwr);
  const std::string path = Write("NLDCC-001_001_001.hwr", content);
  absl::StatusOr<v1::SeriesInput> input = ReadSeriesInput(path);
  ASSERT_TRUE(input.ok()) << input.status();
  const v1::PenTrajectory& pen = input->pen();
  EXPECT_THAT(pen.x(), ElementsAre(10, 11, 15));
  EXPECT_THAT(pen.t_ms(), ElementsAre(0, 5, 15));
  EXPECT_THAT(pen.pressure(), ElementsAre(300, 310, 320));
  EXPECT_THAT(pen.stroke_start(), ElementsAre(true, false, true));
  EXPECT_EQ(*ParseSeriesFormat("hwr"), SeriesFormat::kHwr);
  EXPECT_EQ(SeriesFormatName(SeriesFormat::kHwr), "hwr");
  // A tag line followed by rows of another width is not .hwr.
  EXPECT_EQ(DetectSeriesFormat("TAG 2\n1 2 3\n4 5 6\n"), SeriesFormat::kCsv);
}

TEST_F(ReadSeriesInputTest, ForcedFormatOverridesDetection) {
  // Valid as both; forced CSV reads 4 frames of one feature (the count line is a frame too).
  const std::string path = Write("ambiguous.txt", "3\n1\n2\n3\n");
  absl::StatusOr<v1::SeriesInput> csv = ReadSeriesInput(path, SeriesFormat::kCsv);
  ASSERT_TRUE(csv.ok()) << csv.status();
  EXPECT_THAT(csv->frames().values(), ElementsAre(3, 1, 2, 3));
  // Forced SVC reports the first sample line's column count, with file and line.
  absl::StatusOr<v1::SeriesInput> svc = ReadSeriesInput(path, SeriesFormat::kSvc);
  EXPECT_EQ(svc.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(svc.status().message()), StartsWith(path + ":2: "));
}

TEST_F(ReadSeriesInputTest, ErrorsNameTheFile) {
  const std::string missing = dir_.File("missing.csv");
  absl::StatusOr<v1::SeriesInput> r = ReadSeriesInput(missing);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(missing));
  r = ReadSeriesInput(missing, SeriesFormat::kSvc);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);

  const std::string ragged = Write("ragged.csv", "1,2\n3\n");
  r = ReadSeriesInput(ragged);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), StartsWith(ragged + ":2: "));

  const std::string truncated = Write("short.TXT", "3\n1 2 3 1\n4 5 6 1\n");
  r = ReadSeriesInput(truncated);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), StartsWith(truncated + ":"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("announces 3 samples"));

  const std::string nan = Write("nan.csv", "1,nan\n");
  r = ReadSeriesInput(nan);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), StartsWith(nan + ":1: "));

  const std::string empty = Write("empty.csv", "");
  r = ReadSeriesInput(empty);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(empty));

  r = ReadSeriesInput(dir_.path());  // a directory
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(dir_.path()));
}

}  // namespace
}  // namespace srn
