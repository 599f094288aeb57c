#include "server/series_input.h"

#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/data/signature_features.h"
#include "tests/testing/test_models.h"

namespace srn {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

v1::SeriesInput Pen(const std::vector<double>& x, const std::vector<double>& y,
                    const std::vector<double>& t_ms) {
  v1::SeriesInput input;
  v1::PenTrajectory* pen = input.mutable_pen();
  for (double v : x) pen->add_x(v);
  for (double v : y) pen->add_y(v);
  for (double v : t_ms) pen->add_t_ms(v);
  return input;
}

// Found by fuzz/series_input_fuzzer: pen samples far apart in time passed the length limit (it
// counted samples), then resampled to 100 Hz into up to 2^24 frames: gigabytes and minutes of
// work for one small request.
TEST(SeriesInputTest, PenSamplesThatResampleBeyondTheLimitAreResourceExhausted) {
  const std::shared_ptr<const SimilarityModel> model =
      testing::RandomModel("srn-a", kSignatureFeatureDims, 4, 1, /*signature=*/true);
  // Three samples over 1000 s: 100001 frames at 100 Hz.
  const v1::SeriesInput slow = Pen({0, 5, 9}, {0, 3, 1}, {0, 1000, 1e6});
  const RequestLimits limits;  // 20000 frames
  for (const absl::Status& status : {ToRawSeries(slow, *model, limits, "query").status(),
                                     ToTrainingSeries(slow, limits, "query").status()}) {
    EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
    EXPECT_THAT(std::string(status.message()), StartsWith("query: "));
    EXPECT_THAT(std::string(status.message()), HasSubstr("20000"));
  }
  RequestLimits larger;
  larger.max_series_length = 200000;
  absl::StatusOr<Series> series = ToRawSeries(slow, *model, larger, "query");
  ASSERT_TRUE(series.ok()) << series.status();
  EXPECT_EQ(series->length(), 100001);
}

TEST(SeriesInputTest, StoredReferencesWithoutALengthLimitStillHaveTheResamplingLimit) {
  const std::shared_ptr<const SimilarityModel> model =
      testing::RandomModel("srn-a", kSignatureFeatureDims, 4, 1, /*signature=*/true);
  RequestLimits unlimited;  // as the server re-embeds stored references
  unlimited.max_series_length = std::numeric_limits<int>::max();
  unlimited.check_value_range = false;
  const v1::SeriesInput days = Pen({0, 9}, {0, 1}, {0, 1e9});
  const absl::Status status = ToRawSeries(days, *model, unlimited, "reference").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("too many samples"));
}

}  // namespace
}  // namespace srn
