#ifndef SRN_MODEL_METRICS_METRICS_H_
#define SRN_MODEL_METRICS_METRICS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace srn {

// Verification metrics over scored pairs.
//
// Scores are "higher = more similar"; labels are 1 for a genuine/similar pair and 0 for an
// impostor/dissimilar pair. A pair is accepted at threshold t iff score >= t, so
// FAR = accepted impostors / impostors and FRR = rejected genuines / genuines.
// Every function below fails with InvalidArgument when the spans differ in size, a score is NaN
// or infinite, a label is neither 0 nor 1, or there are no genuine or no impostor pairs.
// All functions are pure and safe to call concurrently.

// Area under the ROC curve: the probability that a random genuine pair outscores a random
// impostor pair, ties counting one half (Mann-Whitney U with average ranks). O(n log n).
absl::StatusOr<double> Auc(absl::Span<const double> scores, absl::Span<const int> labels);

struct OperatingPoint {
  double threshold;  // accept iff score >= threshold
  double far;        // false accept rate in [0, 1]
  double frr;        // false reject rate in [0, 1]
};

// Every distinct operating point, by decreasing threshold: first the "accept nothing" point
// (threshold +infinity, far 0, frr 1), then one point per distinct score s (threshold s), the last
// being the minimum score, which accepts everything (far 1, frr 0). FAR never decreases and FRR
// never increases along the list. ROC = (far, 1 - frr); DET = (far, frr).
absl::StatusOr<std::vector<OperatingPoint>> OperatingPoints(absl::Span<const double> scores,
                                                            absl::Span<const int> labels);

struct EerResult {
  double eer;        // where FAR = FRR
  double threshold;  // the threshold there
};

// Equal error rate: with d = far - frr (which never decreases along OperatingPoints), the first
// adjacent pair of points with d < 0 then d >= 0 is interpolated linearly to d = 0; eer and
// threshold are interpolated with the same weight. When the left point is the "accept nothing"
// point (threshold +infinity) the threshold reported is the right point's (the maximum score).
absl::StatusOr<EerResult> Eer(absl::Span<const double> scores, absl::Span<const int> labels);

// FAR and FRR when accepting score >= threshold. `threshold` may be infinite but not NaN.
absl::StatusOr<OperatingPoint> AtThreshold(absl::Span<const double> scores,
                                           absl::Span<const int> labels, double threshold);

// The operating point with FAR <= target_far and the lowest FRR (that is, the lowest such
// threshold); `target_far` must be in [0, 1]. It may be the "accept nothing" point (+infinity).
absl::StatusOr<OperatingPoint> AtFar(absl::Span<const double> scores, absl::Span<const int> labels,
                                     double target_far);

// Thins a curve from OperatingPoints to at most max(max_points, 2) points for plotting or CSV
// export, keeping the order, both ends and (when max_points >= 4) the two points around the
// FAR = FRR crossing; the other points are spread evenly along the curve's length in the
// (far, frr) plane. A curve that is short enough is returned unchanged.
std::vector<OperatingPoint> ThinCurve(const std::vector<OperatingPoint>& curve, int max_points);

// Writes "threshold,far,frr" and one row per point (infinite thresholds as "inf"), replacing the
// file. Errors say which file could not be written, with the errno-derived code.
absl::Status WriteOperatingPointsCsv(const std::vector<OperatingPoint>& curve,
                                     const std::string& path);

// One-shot 1-nearest-neighbour classification accuracy (the paper's Table 3).
//
// `labels[i]` is the class of example i (any int; a class is every distinct value). Each draw picks
// one reference example per class uniformly at random (a std::mt19937_64 stream seeded by `seed`,
// so results are identical on every platform and for any thread count); every other example is a
// query, classified as the class of its most similar reference (ties go to the reference of the
// smallest class label). accuracy = mean over draws of the fraction of queries classified
// correctly; stddev = population standard deviation of that fraction over the draws. Classes with a
// single example take part as references only. Fails with InvalidArgument when there are fewer than
// 2 classes, no class has 2 examples, draws < 1, threads < 1, or a score is NaN.

// Similarity of example `query` to example `reference` (indices into labels); higher = more
// similar. With threads > 1 it is called from several threads at once and must be thread-safe.
using PairScore = std::function<double(int query, int reference)>;

// Batch form: writes the similarity of `query` to references[k] into out[k] for every k. Lets a
// scorer share work within one query's 1-NN search (e.g. DTW lower-bound pruning): out[k] must be
// exact for every reference of maximal similarity, and for any other may be any value not above
// that maximum (e.g. -infinity for a reference proven not to be the nearest). Thread-safety as
// above.
using ReferenceScorer =
    std::function<void(int query, absl::Span<const int> references, double* out)>;

struct OneShotResult {
  double accuracy;  // mean fraction correct over draws
  double stddev;    // population standard deviation of that fraction over draws
  int draws;
  int queries_per_draw;  // examples minus classes
};

absl::StatusOr<OneShotResult> OneShotAccuracy(absl::Span<const int> labels, int draws,
                                              uint64_t seed, const PairScore& score,
                                              int threads = 1);
absl::StatusOr<OneShotResult> OneShotAccuracyBatch(absl::Span<const int> labels, int draws,
                                                   uint64_t seed, const ReferenceScorer& scorer,
                                                   int threads = 1);

}  // namespace srn

#endif  // SRN_MODEL_METRICS_METRICS_H_
