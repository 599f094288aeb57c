#ifndef SRN_MODEL_SIGNATURE_SOFT_DTW_H_
#define SRN_MODEL_SIGNATURE_SOFT_DTW_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/data/series.h"
#include "model/eval/dtw.h"

namespace srn {

// Soft-DTW (Cuturi and Blondel, "Soft-DTW: a Differentiable Loss Function for Time-Series",
// ICML 2017): DTW with the minimum over warping paths replaced by the soft minimum
//   min_gamma(x_1..x_k) = -gamma log sum_i exp(-x_i / gamma),
// so that the accumulated cost is a smooth function of both sequences' frames, and a loss on it
// can be trained through the alignment. With frame cost d(i, j),
//   R(i, j) = d(i, j) + min_gamma(R(i-1, j-1), R(i-1, j), R(i, j-1)),  R(-1, -1) = 0,
// and the value is R(Ta - 1, Tb - 1). As gamma -> 0 it tends to plain DTW with the same frame
// cost (model/eval/dtw.h); for gamma > 0 it is below it, by at most gamma log(3) (Ta + Tb - 1).
// The soft minimum is computed as a log-sum-exp around the smallest argument, so no gamma
// underflows or overflows.
//
// The frame cost is DtwOptions::local_cost: the squared Euclidean distance |a_i - b_j|^2 (the
// paper's), or the Euclidean distance, smoothed as sqrt(|a_i - b_j|^2 + kSoftDtwCostEpsilon) so
// that its gradient stays bounded where two frames meet (it then exceeds DTW's Euclidean cost by
// at most sqrt(kSoftDtwCostEpsilon) per cell of a path).
//
// The gradient is the paper's second dynamic program: E(i, j) = d(value)/d(d(i, j)) is the
// expected alignment, E(Ta-1, Tb-1) = 1 and E(i, j) = sum over the successors s of (i, j) of
// E(s) times the soft-min weight that s gave to (i, j) (kept from the forward pass, so the
// backward pass needs no exponentials). Then, with W = E for the squared cost and
// W(i, j) = E(i, j) / (2 d(i, j)) for the Euclidean one, d/da_i = 2 sum_j W(i, j) (a_i - b_j) and
// d/db_j = 2 sum_i W(i, j) (b_j - a_i), two matrix products.
//
// A Sakoe-Chiba band restricts the paths to cells |i - j| <= radius, the radius of
// DtwBandRadius (so at least |Ta - Tb|, and the same cells as DtwDistance with that band); cells
// outside it cost +infinity. Time and memory are O(Ta Tb dims) for the frame costs and the
// gradient's products (matrix products over all cells) plus O(Ta Tb) for the recursions, which
// visit only the band.
//
// Pure functions; safe to call concurrently with distinct workspaces.

inline constexpr double kSoftDtwCostEpsilon = 1e-9;

struct SoftDtwOptions {
  double gamma = 1.0;  // smoothing, > 0
  // The Sakoe-Chiba band (band_frames / band_fraction) and the frame cost (local_cost), as for
  // DTW.
  DtwOptions dtw;
};

// Scratch space reused from call to call (no allocation once it has grown to the largest pair).
// Not thread-safe: one per thread.
template <typename T>
struct SoftDtwWorkspace {
  RowMatrixT<T> cost;     // d(i, j), Ta x Tb
  RowMatrixT<T> r;        // R, padded: r(i + 1, j + 1) = R(i, j); row and column 0 the border
  RowMatrixT<T> weights;  // soft-min weights of cell (i, j)'s predecessors diag, up, left at
                          // (i, 3 j .. 3 j + 2); row Ta and column block Tb are padding
  RowMatrixT<T> e;        // E, (Ta + 1) x (Tb + 1), zero outside the band and in the padding
                          // (after SoftDtwBackward: W, see above)
  // The last forward pass: lengths, band radius and frame cost (ta = 0: none yet).
  int ta = 0, tb = 0, radius = 0;
  bool euclidean = false;
};

// InvalidArgument, naming the problem, when a sequence has no frames or a non-finite value, the
// two have different numbers of values per frame (or none), gamma is not a finite number > 0, or
// band_fraction is NaN. OK otherwise.
template <typename T>
absl::Status ValidateSoftDtwInput(const RowMatrixT<T>& a, const RowMatrixT<T>& b,
                                  const SoftDtwOptions& options);

// The soft-DTW value of a (Ta x dims) and b (Tb x dims), one frame per row. Errors as
// ValidateSoftDtwInput. `ws` may be null (a temporary is used).
template <typename T>
absl::StatusOr<T> SoftDtw(const RowMatrixT<T>& a, const RowMatrixT<T>& b,
                          const SoftDtwOptions& options, SoftDtwWorkspace<T>* ws = nullptr);

// The value, and its gradient with respect to every frame: grad_a (resized to Ta x dims) and
// grad_b (Tb x dims) are set to d(value)/d(a) and d(value)/d(b). Errors as ValidateSoftDtwInput
// (the outputs are then left as they were).
template <typename T>
absl::StatusOr<T> SoftDtwWithGradient(const RowMatrixT<T>& a, const RowMatrixT<T>& b,
                                      const SoftDtwOptions& options, RowMatrixT<T>* grad_a,
                                      RowMatrixT<T>* grad_b, SoftDtwWorkspace<T>* ws = nullptr);

// The gradient of the value the last SoftDtw call on `ws` computed, for the same a and b (which
// must be passed again, unchanged): grad_a and grad_b as SoftDtwWithGradient sets them. Lets a
// caller compute values first and pay for gradients only where a loss needs them.
// FailedPrecondition when `ws` holds no forward pass of a pair of these lengths; InvalidArgument
// when an output is null.
template <typename T>
absl::Status SoftDtwBackward(const RowMatrixT<T>& a, const RowMatrixT<T>& b,
                             SoftDtwWorkspace<T>* ws, RowMatrixT<T>* grad_a, RowMatrixT<T>* grad_b);

}  // namespace srn

#endif  // SRN_MODEL_SIGNATURE_SOFT_DTW_H_
