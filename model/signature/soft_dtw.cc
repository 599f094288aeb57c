#include "model/signature/soft_dtw.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_format.h"

namespace srn {
namespace {

template <typename T>
bool AllFinite(const RowMatrixT<T>& m) {
  return m.array().isFinite().all();
}

// The forward recursion over the band; returns R(n - 1, m - 1). ws->cost must hold the frame
// costs. Fills ws->r and, for the backward pass, ws->weights. The backward pass also reads the
// weights just outside the band and in the padding row, where E is zero: they are set to zero,
// so that memory never written (which may hold NaN bit patterns) cannot turn 0 * w into NaN.
template <typename T>
T Forward(int n, int m, int radius, T gamma, SoftDtwWorkspace<T>* ws) {
  constexpr T kInf = std::numeric_limits<T>::infinity();
  const T inv_gamma = T(1) / gamma;
  RowMatrixT<T>& r = ws->r;
  RowMatrixT<T>& w = ws->weights;
  r.setConstant(n + 1, m + 1, kInf);
  r(0, 0) = T(0);
  w.resize(n + 1, 3 * (m + 1));
  const RowMatrixT<T>& cost = ws->cost;
  for (int i = 0; i < n; ++i) {
    const int lo = std::max(0, i - radius);
    const int hi = std::min(m - 1, i + radius);
    const T* up_row = r.row(i).data();  // R(i - 1, .) at index j + 1
    T* row = r.row(i + 1).data();       // R(i, .) at index j + 1
    const T* c = cost.row(i).data();
    T* wr = w.row(i).data();
    if (lo > 0) std::fill_n(wr + 3 * (lo - 1), 3, T(0));
    std::fill_n(wr + 3 * (hi + 1), 3, T(0));
    for (int j = lo; j <= hi; ++j) {
      const T diag = up_row[j];
      const T up = up_row[j + 1];
      const T left = row[j];
      // Shifted by the smallest argument (finite: every band cell is reachable), whose term is
      // exp(0) = 1, so only two exponentials are needed and the sum is in [1, 3].
      T low, ed, eu, el;
      if (diag <= up && diag <= left) {
        low = diag;
        ed = T(1);
        eu = std::exp((low - up) * inv_gamma);
        el = std::exp((low - left) * inv_gamma);
      } else if (up <= left) {
        low = up;
        ed = std::exp((low - diag) * inv_gamma);
        eu = T(1);
        el = std::exp((low - left) * inv_gamma);
      } else {
        low = left;
        ed = std::exp((low - diag) * inv_gamma);
        eu = std::exp((low - up) * inv_gamma);
        el = T(1);
      }
      const T sum = ed + eu + el;
      const T inv_sum = T(1) / sum;
      row[j + 1] = c[j] + low - gamma * std::log(sum);
      wr[3 * j] = ed * inv_sum;
      wr[3 * j + 1] = eu * inv_sum;
      wr[3 * j + 2] = el * inv_sum;
    }
  }
  // The backward pass reads the padding row n where row n - 1's band ends.
  const int lo = std::max(0, n - 1 - radius);
  const int hi = std::min(m - 1, n - 1 + radius);
  std::fill_n(w.row(n).data() + 3 * lo, 3 * (hi - lo + 2), T(0));
  return r(n, m);
}

// The backward recursion: ws->e = d(value)/d(cost), zero outside the band.
template <typename T>
void Backward(int n, int m, int radius, SoftDtwWorkspace<T>* ws) {
  RowMatrixT<T>& e = ws->e;
  const RowMatrixT<T>& w = ws->weights;
  e.setZero(n + 1, m + 1);
  for (int i = n - 1; i >= 0; --i) {
    const int lo = std::max(0, i - radius);
    const int hi = std::min(m - 1, i + radius);
    T* er = e.row(i).data();
    const T* below = e.row(i + 1).data();
    const T* wr = w.row(i).data();
    const T* wbelow = w.row(i + 1).data();
    int j = hi;
    if (i == n - 1) {
      // The end cell, the last of row n - 1 (the radius covers |n - m|, so hi = m - 1 there).
      er[m - 1] = T(1);
      j = m - 2;
    }
    for (; j >= lo; --j) {
      // Successors (i + 1, j) took (i, j) as "up", (i, j + 1) as "left", (i + 1, j + 1) as
      // "diag"; outside the band (and in the padding) their E and weights are zero.
      er[j] = below[j] * wbelow[3 * j + 1] + er[j + 1] * wr[3 * (j + 1) + 2] +
              below[j + 1] * wbelow[3 * (j + 1)];
    }
  }
}

// d(value)/d(a) and d(value)/d(b) from ws->e holding d(value)/d(|a_i - b_j|^2):
// 2 sum_j E(i, j) (a_i - b_j), and alike for b.
template <typename T>
void FrameGradients(const RowMatrixT<T>& a, const RowMatrixT<T>& b, const SoftDtwWorkspace<T>& ws,
                    RowMatrixT<T>* grad_a, RowMatrixT<T>* grad_b) {
  const auto e = ws.e.topLeftCorner(a.rows(), b.rows());
  grad_a->noalias() = T(-2) * e * b;
  *grad_a += T(2) * (e.rowwise().sum().asDiagonal() * a);
  grad_b->noalias() = T(-2) * e.transpose() * a;
  *grad_b += T(2) * (e.colwise().sum().transpose().asDiagonal() * b);
}

}  // namespace

template <typename T>
absl::Status ValidateSoftDtwInput(const RowMatrixT<T>& a, const RowMatrixT<T>& b,
                                  const SoftDtwOptions& options) {
  if (!(options.gamma > 0) || !std::isfinite(options.gamma)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("soft-DTW gamma must be a finite number > 0, got %g", options.gamma));
  }
  if (std::isnan(options.dtw.band_fraction)) {
    return absl::InvalidArgumentError("soft-DTW band_fraction is NaN");
  }
  if (a.rows() == 0 || b.rows() == 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "soft-DTW needs two non-empty sequences, got %d and %d frames", a.rows(), b.rows()));
  }
  if (a.cols() != b.cols() || a.cols() == 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("soft-DTW needs the same number (> 0) of values per frame, got %d and %d",
                        a.cols(), b.cols()));
  }
  if (!AllFinite(a) || !AllFinite(b)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "soft-DTW: the %s sequence has a non-finite value", AllFinite(a) ? "second" : "first"));
  }
  return absl::OkStatus();
}

template <typename T>
absl::StatusOr<T> SoftDtw(const RowMatrixT<T>& a, const RowMatrixT<T>& b,
                          const SoftDtwOptions& options, SoftDtwWorkspace<T>* ws) {
  if (absl::Status s = ValidateSoftDtwInput(a, b, options); !s.ok()) return s;
  SoftDtwWorkspace<T> local;
  if (ws == nullptr) ws = &local;
  const int n = static_cast<int>(a.rows());
  const int m = static_cast<int>(b.rows());
  ws->ta = n;
  ws->tb = m;
  ws->radius = DtwBandRadius(options.dtw, n, m);
  RowMatrixT<T>& cost = ws->cost;
  cost.noalias() = T(-2) * a * b.transpose();
  cost.colwise() += a.rowwise().squaredNorm();
  cost.rowwise() += b.rowwise().squaredNorm().transpose();
  cost = cost.cwiseMax(T(0));  // |x|^2 + |y|^2 - 2 x.y can round below zero
  ws->euclidean = options.dtw.local_cost == DtwLocalCost::kEuclidean;
  if (ws->euclidean) cost = (cost.array() + static_cast<T>(kSoftDtwCostEpsilon)).sqrt();
  return Forward(n, m, ws->radius, static_cast<T>(options.gamma), ws);
}

template <typename T>
absl::Status SoftDtwBackward(const RowMatrixT<T>& a, const RowMatrixT<T>& b,
                             SoftDtwWorkspace<T>* ws, RowMatrixT<T>* grad_a,
                             RowMatrixT<T>* grad_b) {
  if (grad_a == nullptr || grad_b == nullptr) {
    return absl::InvalidArgumentError("the soft-DTW gradient needs both gradient outputs");
  }
  if (ws == nullptr || ws->ta == 0 || ws->ta != a.rows() || ws->tb != b.rows()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "SoftDtwBackward: the workspace holds no soft-DTW of a %d x %d pair", a.rows(), b.rows()));
  }
  Backward(ws->ta, ws->tb, ws->radius, ws);
  if (ws->euclidean) {
    // d(value)/d(|a_i - b_j|^2) = E(i, j) / (2 d(i, j)); d >= sqrt(epsilon) > 0.
    ws->e.topLeftCorner(ws->ta, ws->tb).array() *= T(0.5) / ws->cost.array();
  }
  FrameGradients(a, b, *ws, grad_a, grad_b);
  return absl::OkStatus();
}

template <typename T>
absl::StatusOr<T> SoftDtwWithGradient(const RowMatrixT<T>& a, const RowMatrixT<T>& b,
                                      const SoftDtwOptions& options, RowMatrixT<T>* grad_a,
                                      RowMatrixT<T>* grad_b, SoftDtwWorkspace<T>* ws) {
  if (grad_a == nullptr || grad_b == nullptr) {
    return absl::InvalidArgumentError("the soft-DTW gradient needs both gradient outputs");
  }
  SoftDtwWorkspace<T> local;
  if (ws == nullptr) ws = &local;
  absl::StatusOr<T> value = SoftDtw(a, b, options, ws);
  if (!value.ok()) return value;
  if (absl::Status s = SoftDtwBackward(a, b, ws, grad_a, grad_b); !s.ok()) return s;
  return value;
}

#define SRN_INSTANTIATE_SOFT_DTW(T)                                                             \
  template absl::Status ValidateSoftDtwInput<T>(const RowMatrixT<T>&, const RowMatrixT<T>&,     \
                                                const SoftDtwOptions&);                         \
  template absl::StatusOr<T> SoftDtw<T>(const RowMatrixT<T>&, const RowMatrixT<T>&,             \
                                        const SoftDtwOptions&, SoftDtwWorkspace<T>*);           \
  template absl::StatusOr<T> SoftDtwWithGradient<T>(const RowMatrixT<T>&, const RowMatrixT<T>&, \
                                                    const SoftDtwOptions&, RowMatrixT<T>*,      \
                                                    RowMatrixT<T>*, SoftDtwWorkspace<T>*);      \
  template absl::Status SoftDtwBackward<T>(const RowMatrixT<T>&, const RowMatrixT<T>&,          \
                                           SoftDtwWorkspace<T>*, RowMatrixT<T>*, RowMatrixT<T>*);
SRN_INSTANTIATE_SOFT_DTW(float)
SRN_INSTANTIATE_SOFT_DTW(double)
#undef SRN_INSTANTIATE_SOFT_DTW

}  // namespace srn
