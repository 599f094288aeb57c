#ifndef SRN_MODEL_DATA_SERIES_H_
#define SRN_MODEL_DATA_SERIES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "Eigen/Core"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace srn {

// Row-major dense matrices: one row per frame (series) or per example (embeddings).
template <typename T>
using RowMatrixT = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowMatrix = RowMatrixT<float>;
template <typename T>
using VectorT = Eigen::Matrix<T, Eigen::Dynamic, 1>;
using Vector = VectorT<float>;

// Limits on what a series may be; every entry point that accepts series from outside checks them.
struct SeriesLimits {
  int max_length = 100000;  // frames
  int max_dims = 4096;      // features per frame
};

// A time series: length() frames of dims() features each, stored row-major (frame t is row t).
// A value type; not synchronized.
class Series final {
 public:
  Series() = default;
  Series(int length, int dims) : frames_(length, dims) {}
  explicit Series(RowMatrix frames) : frames_(std::move(frames)) {}

  // Builds a series from a flat row-major array of `values.size()` = length * dims floats.
  // Fails with InvalidArgument on an empty array, a count that is not a multiple of `dims`,
  // NaN or infinite values, or a shape beyond `limits`.
  static absl::StatusOr<Series> FromValues(absl::Span<const float> values, int dims,
                                           const SeriesLimits& limits = {});

  int length() const { return static_cast<int>(frames_.rows()); }
  int dims() const { return static_cast<int>(frames_.cols()); }
  bool empty() const { return frames_.size() == 0; }

  const RowMatrix& frames() const { return frames_; }
  RowMatrix& mutable_frames() { return frames_; }
  const float* data() const { return frames_.data(); }

 private:
  RowMatrix frames_;
};

// `series` with at most `max_frames` frames (max_frames >= 2): unchanged when it has no more,
// else resampled to exactly max_frames frames at evenly spaced positions from its first frame to
// its last, each feature linearly interpolated. Bounds the cost of quadratic work (DTW).
Series CapFrames(const Series& series, int max_frames);

// Checks a series against the limits and for non-finite values; InvalidArgument says what is wrong.
absl::Status ValidateSeries(const Series& series, const SeriesLimits& limits = {});

}  // namespace srn

#endif  // SRN_MODEL_DATA_SERIES_H_
