#include "model/data/series.h"

#include <cmath>
#include <limits>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace srn {
namespace {

using ::testing::HasSubstr;

TEST(SeriesTest, FromValuesIsRowMajor) {
  const std::vector<float> values = {1, 2, 3, 4, 5, 6};
  absl::StatusOr<Series> s = Series::FromValues(values, 3);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->length(), 2);
  EXPECT_EQ(s->dims(), 3);
  EXPECT_FALSE(s->empty());
  EXPECT_EQ(s->frames()(0, 2), 3.0f);
  EXPECT_EQ(s->frames()(1, 0), 4.0f);
  EXPECT_EQ(s->data()[5], 6.0f);
}

TEST(SeriesTest, FromValuesRejectsBadShapes) {
  const std::vector<float> six = {1, 2, 3, 4, 5, 6};
  EXPECT_EQ(Series::FromValues({}, 3).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(Series::FromValues({}, 3).status().message()), HasSubstr("empty"));
  absl::Status not_multiple = Series::FromValues(six, 4).status();
  EXPECT_EQ(not_multiple.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(not_multiple.message()), HasSubstr("not a multiple"));
  EXPECT_EQ(Series::FromValues(six, 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Series::FromValues(six, -2).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SeriesTest, FromValuesRejectsNonFiniteValuesAndSaysWhere) {
  std::vector<float> values = {1, 2, 3, 4, 5, 6};
  values[4] = std::numeric_limits<float>::quiet_NaN();
  absl::Status nan = Series::FromValues(values, 3).status();
  EXPECT_EQ(nan.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(nan.message()), HasSubstr("frame 1, feature 1"));
  values[4] = 5;
  values[0] = -std::numeric_limits<float>::infinity();
  absl::Status inf = Series::FromValues(values, 3).status();
  EXPECT_EQ(inf.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(inf.message()), HasSubstr("frame 0, feature 0"));
}

TEST(SeriesTest, FromValuesEnforcesLimits) {
  const std::vector<float> six = {1, 2, 3, 4, 5, 6};
  SeriesLimits limits;
  limits.max_dims = 2;
  EXPECT_EQ(Series::FromValues(six, 3, limits).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Series::FromValues(six, 2, limits).ok());  // 3 frames x 2 features
  limits.max_length = 2;
  absl::Status too_long = Series::FromValues(six, 2, limits).status();
  EXPECT_EQ(too_long.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(too_long.message()), HasSubstr("3 frames"));
  EXPECT_TRUE(Series::FromValues(six, 3, SeriesLimits{2, 3}).ok());  // exactly at the limits
}

TEST(SeriesTest, ValidateSeries) {
  EXPECT_EQ(ValidateSeries(Series()).code(), absl::StatusCode::kInvalidArgument);
  Series s(3, 2);
  s.mutable_frames().setConstant(1.0f);
  EXPECT_TRUE(ValidateSeries(s).ok());
  EXPECT_EQ(ValidateSeries(s, SeriesLimits{2, 10}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateSeries(s, SeriesLimits{10, 1}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ValidateSeries(s, SeriesLimits{3, 2}).ok());
  s.mutable_frames()(2, 1) = std::numeric_limits<float>::infinity();
  absl::Status inf = ValidateSeries(s);
  EXPECT_EQ(inf.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(inf.message()), HasSubstr("frame 2, feature 1"));
  s.mutable_frames()(2, 1) = std::nanf("");
  EXPECT_EQ(ValidateSeries(s).code(), absl::StatusCode::kInvalidArgument);
}

TEST(CapFramesTest, LeavesShortSeriesAndResamplesLongOnesLinearly) {
  Series s(5, 2);
  for (int t = 0; t < 5; ++t) {
    s.mutable_frames()(t, 0) = static_cast<float>(t);       // a ramp
    s.mutable_frames()(t, 1) = static_cast<float>(t * t);  // a parabola
  }
  const Series same = CapFrames(s, 5);
  EXPECT_EQ(same.frames(), s.frames());
  const Series capped = CapFrames(s, 3);  // positions 0, 2, 4
  ASSERT_EQ(capped.length(), 3);
  ASSERT_EQ(capped.dims(), 2);
  EXPECT_FLOAT_EQ(capped.frames()(1, 0), 2.0f);
  EXPECT_FLOAT_EQ(capped.frames()(2, 1), 16.0f);
  const Series between = CapFrames(s, 4);  // positions 0, 4/3, 8/3, 4
  EXPECT_FLOAT_EQ(between.frames()(1, 0), 4.0f / 3);
  EXPECT_FLOAT_EQ(between.frames()(1, 1), 2.0f);  // 2/3 of 1 plus 1/3 of 4
  EXPECT_FLOAT_EQ(between.frames()(3, 1), 16.0f);
}

}  // namespace
}  // namespace srn
