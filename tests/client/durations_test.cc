#include "client/durations.h"

#include <cmath>
#include <limits>

#include "gtest/gtest.h"

namespace srn {
namespace {

TEST(FormatSecondsTest, TenthsUnderTenSeconds) {
  EXPECT_EQ(FormatSeconds(0), "0.0s");
  EXPECT_EQ(FormatSeconds(0.37), "0.3s");  // truncated, as every size below
  EXPECT_EQ(FormatSeconds(9.96), "9.9s");
}

TEST(FormatSecondsTest, WholeSecondsUnderAMinute) {
  EXPECT_EQ(FormatSeconds(10), "10s");
  EXPECT_EQ(FormatSeconds(59.99), "59s");
}

TEST(FormatSecondsTest, MinutesAndSecondsUnderAnHour) {
  EXPECT_EQ(FormatSeconds(60), "1m00s");
  EXPECT_EQ(FormatSeconds(187.4), "3m07s");
  EXPECT_EQ(FormatSeconds(3599.9), "59m59s");
}

TEST(FormatSecondsTest, HoursAndMinutesBeyond) {
  EXPECT_EQ(FormatSeconds(3600), "1h00m");
  EXPECT_EQ(FormatSeconds(7529), "2h05m");
  EXPECT_EQ(FormatSeconds(100 * 3600 + 59), "100h00m");
}

TEST(FormatSecondsTest, NoValueForNegativeOrNonFinite) {
  EXPECT_EQ(FormatSeconds(-1), "-");
  EXPECT_EQ(FormatSeconds(std::numeric_limits<double>::quiet_NaN()), "-");
  EXPECT_EQ(FormatSeconds(std::numeric_limits<double>::infinity()), "-");
}

}  // namespace
}  // namespace srn
