#ifndef SRN_MODEL_EVAL_DTW_H_
#define SRN_MODEL_EVAL_DTW_H_

#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "base/cancellation.h"
#include "model/metrics/metrics.h"
#include "model/data/series.h"

namespace srn {

// Signature verification resamples series longer than this (CapFrames) before DTW, the hand-made
// features' (PrepareForSignatureDtw) and the model's states' (HiddenStates), so that one
// comparison costs at most 5000^2 x band cells (tens of milliseconds) whatever a caller sends:
// 50 s of signing at 100 Hz, longer than any signature of SVC2004 or SigComp2009 NFI (so no
// recorded figure changes).
inline constexpr int kMaxDtwFrames = 5000;

// The mean of distance(i, j) over the n(n-1)/2 pairs i < j, summed in the order i ascending,
// then j ascending (so every caller gets the same bits); 1 when n < 2 (nothing to divide by).
// `cancel` is checked before each pair and at the end: its status when the work was abandoned
// (so `distance` may pass it on to stop a long DTW early).
absl::StatusOr<double> MeanMutualDistance(int n, const std::function<double(int, int)>& distance,
                                          const Cancellation& cancel = NeverCancelled());

// Dynamic time warping, the classic baseline of the paper.
//
// Frames are compared by squared Euclidean distance (all series must have the same dims). The
// accumulated cost of a pair is the smallest sum of frame costs over warping paths from (0, 0) to
// (Ta - 1, Tb - 1) with steps (1, 0), (0, 1) and (1, 1). Its length-normalized form, cost / (Ta +
// Tb), is the dissimilarity used for scoring: similarity = -normalized distance.
// All functions are pure and safe to call concurrently; series are only read.

// Sakoe-Chiba band: only cells (i, j) with |i - j| <= radius are visited.
//   band_frames >= 0      radius = band_frames;
//   else band_fraction >= 0: radius = ceil(band_fraction * max(Ta, Tb)), e.g. 0.1 for a 10% band;
//   else                  no band.
// The radius is always widened to at least |Ta - Tb| (otherwise no path reaches the end cell), so a
// band never makes two series incomparable. A radius >= max(Ta, Tb) - 1 is the same as no band.
// The cost of matching two frames: squared Euclidean distance (the default, and the only cost
// the lower bounds and the 1-NN search support), or Euclidean distance, which weighs large
// local differences less (the classic signature verifier's choice).
enum class DtwLocalCost { kSquaredEuclidean, kEuclidean };

struct DtwOptions {
  int band_frames = -1;
  double band_fraction = -1.0;
  DtwLocalCost local_cost = DtwLocalCost::kSquaredEuclidean;

  static DtwOptions NoBand() { return {}; }
  static DtwOptions Frames(int radius) { return {radius, -1.0}; }
  static DtwOptions Fraction(double fraction) { return {-1, fraction}; }
  DtwOptions WithCost(DtwLocalCost cost) const {
    DtwOptions o = *this;
    o.local_cost = cost;
    return o;
  }
};

// The band radius used for series of lengths ta and tb (both >= 1); see DtwOptions.
int DtwBandRadius(const DtwOptions& options, int ta, int tb);

// At most how many cells DTW computes for series of lengths ta and tb (both >= 1): ta rows of at
// most min(tb, 2 * radius + 1) cells. What a call's cost budget counts.
int64_t DtwCells(const DtwOptions& options, int ta, int tb);

struct DtwResult {
  double cost;        // accumulated cost of the best path (DtwOptions::local_cost per cell)
  double normalized;  // cost / (Ta + Tb)
};

// Checked entry point: InvalidArgument if a series is empty or has non-finite values, the dims
// differ, or band_fraction is NaN.
absl::StatusOr<DtwResult> Dtw(const Series& a, const Series& b, const DtwOptions& options = {});

// Unchecked hot path, O(Ta * radius) time and two rows of memory. Returns the accumulated cost, or
// +infinity as soon as every cell of a row exceeds `abandon_above` (the row minima never decrease,
// so the final cost would exceed it too). Returns NaN instead of crashing when a series is empty or
// the dims differ; non-finite values propagate. With `cancel`, checked every 64 rows, returns
// +infinity early once it says stop: the caller checks `cancel` before using the result.
double DtwDistance(const Series& a, const Series& b, const DtwOptions& options = {},
                   double abandon_above = std::numeric_limits<double>::infinity(),
                   const Cancellation* cancel = nullptr);
// DtwDistance(a, b, options) / (Ta + Tb).
double NormalizedDtwDistance(const Series& a, const Series& b, const DtwOptions& options = {},
                             const Cancellation* cancel = nullptr);

// Lower bounds on DtwDistance(query, candidate, options) (unnormalized, unchecked like it) with
// the squared Euclidean local cost.
// LB_Kim: every path starts at (0, 0) and ends at the last cell, so the cost of those frame pairs.
double LbKim(const Series& query, const Series& candidate);
// LB_Keogh: every path visits each candidate frame j at least once, paired with a query frame
// inside the band [j - r, j + r] (clamped to the query); each such visit costs at least the squared
// distance from the candidate frame to the per-dimension min/max envelope of those query frames.
// Valid for any two lengths because the radius r = DtwBandRadius(options, ...) covers |Ta - Tb|.
double LbKeogh(const Series& query, const Series& candidate, const DtwOptions& options = {});

// 1-nearest-neighbour search under normalized DTW.
//
// DtwNearest returns exactly what DtwNearestBruteForce returns — the reference with the smallest
// normalized distance, the lowest position among equals, and that distance — but visits the
// references in order of max(LB_Kim, LB_Keogh), skips those whose bound exceeds the best distance
// so far, and abandons DTW computations once they exceed it. Bounds are compared with a 1e-9
// relative margin so that floating-point rounding can never prune the true neighbour. LB_Keogh
// uses a per-query sparse table of window minima and maxima (O(Tq log Tq dims) floats), and is
// skipped (LB_Kim alone then orders and prunes) for a query whose table would exceed 16 MiB.
// References are borrowed for the duration of the call. InvalidArgument when `references` is
// empty or holds a null, empty or non-finite series, or dims differ from the query's.

struct DtwNeighbor {
  int index;        // position in `references`
  double distance;  // normalized DTW distance
};

// What the pruning saved; candidates = pruned_by_kim + pruned_by_keogh + abandoned + completed.
struct DtwSearchStats {
  int64_t candidates = 0;       // references considered
  int64_t pruned_by_kim = 0;    // skipped: LB_Kim exceeded the best so far
  int64_t pruned_by_keogh = 0;  // skipped: LB_Keogh (but not LB_Kim) exceeded it
  int64_t abandoned = 0;        // DTW started but abandoned early
  int64_t completed = 0;        // DTW computed to the end

  int64_t pruned() const { return pruned_by_kim + pruned_by_keogh + abandoned; }
  void Add(const DtwSearchStats& other);
};

absl::StatusOr<DtwNeighbor> DtwNearest(const Series& query,
                                       absl::Span<const Series* const> references,
                                       const DtwOptions& options = {},
                                       DtwSearchStats* stats = nullptr);
absl::StatusOr<DtwNeighbor> DtwNearestBruteForce(const Series& query,
                                                 absl::Span<const Series* const> references,
                                                 const DtwOptions& options = {});

// A ReferenceScorer (see metrics.h) for OneShotAccuracyBatch over `series` (borrowed: it must
// outlive the scorer; index i of labels is series[i]): similarity = -normalized DTW, with the same
// pruning as DtwNearest (pruned and abandoned references score -infinity, as the ReferenceScorer
// contract allows). Thread-safe; if `stats` is not null every call adds its counts to it (under a
// lock), so it must outlive the scorer too. InvalidArgument when a series is null, empty or
// non-finite, the dims differ, or band_fraction is NaN.
absl::StatusOr<ReferenceScorer> MakeDtwReferenceScorer(std::vector<const Series*> series,
                                                       const DtwOptions& options = {},
                                                       DtwSearchStats* stats = nullptr);

}  // namespace srn

#endif  // SRN_MODEL_EVAL_DTW_H_
