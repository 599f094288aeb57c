#include "model/eval/dtw.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <numeric>
#include <utility>

#include "absl/strings/str_cat.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

namespace srn {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// Lower bounds and DTW sum the same frame costs in different orders, so a computed bound can exceed
// the computed distance by a few ulps; pruning only beyond this relative margin keeps it exact.
constexpr double kPruneMargin = 1 + 1e-9;

// Squared Euclidean distance between two frames. Symmetric bit for bit, which makes DTW symmetric.
// Four partial sums break the add latency chain (the compiler may not reorder a double sum); each
// step is one fused multiply-add, written out so that every kernel rounds the same way.
inline double FrameCost(const float* a, const float* b, int dims) {
  double sum[4] = {0, 0, 0, 0};
  int d = 0;
  for (; d + 4 <= dims; d += 4) {
    for (int k = 0; k < 4; ++k) {
      const double diff = static_cast<double>(a[d + k]) - static_cast<double>(b[d + k]);
      sum[k] = std::fma(diff, diff, sum[k]);
    }
  }
  for (; d < dims; ++d) {
    const double diff = static_cast<double>(a[d]) - static_cast<double>(b[d]);
    sum[0] = std::fma(diff, diff, sum[0]);
  }
  return (sum[0] + sum[1]) + (sum[2] + sum[3]);
}

bool Comparable(const Series& a, const Series& b) {
  return !a.empty() && !b.empty() && a.dims() == b.dims();
}

// The local costs of one DP row: frame `a_frame` (dims doubles) against b's frames lo..hi, from
// b transposed to doubles (`bt`, dims rows of `stride`), into cost[lo..hi]. Each cost is summed
// exactly as FrameCost sums it (partial sums by dimension mod 4, each in increasing dimension,
// combined as (s0 + s1) + (s2 + s3)), so the result is the same bit for bit; but four frames at a
// time, one per vector lane, which has no long dependency chain per cell and needs no horizontal
// sums or conversions.
template <DtwLocalCost kCost>
inline void RowCosts(const double* a_frame, const double* bt, size_t stride, int dims, int lo,
                     int hi, double* cost) {
  constexpr int kLanes = 4;
  int j = lo;
#if defined(__AVX2__) && defined(__FMA__)
  // The same arithmetic in explicit vectors: the generic loop below leaves the lanes' sums, the
  // square roots (errno-checked) and the stores to scalar code.
  for (; j + kLanes <= hi + 1; j += kLanes) {
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    __m256d s2 = _mm256_setzero_pd(), s3 = _mm256_setzero_pd();
    const double* y = bt + j;
    int d = 0;
    for (; d + 4 <= dims; d += 4, y += 4 * stride) {
      __m256d diff = _mm256_sub_pd(_mm256_broadcast_sd(a_frame + d), _mm256_loadu_pd(y));
      s0 = _mm256_fmadd_pd(diff, diff, s0);
      diff = _mm256_sub_pd(_mm256_broadcast_sd(a_frame + d + 1), _mm256_loadu_pd(y + stride));
      s1 = _mm256_fmadd_pd(diff, diff, s1);
      diff = _mm256_sub_pd(_mm256_broadcast_sd(a_frame + d + 2), _mm256_loadu_pd(y + 2 * stride));
      s2 = _mm256_fmadd_pd(diff, diff, s2);
      diff = _mm256_sub_pd(_mm256_broadcast_sd(a_frame + d + 3), _mm256_loadu_pd(y + 3 * stride));
      s3 = _mm256_fmadd_pd(diff, diff, s3);
    }
    for (; d < dims; ++d, y += stride) {
      const __m256d diff = _mm256_sub_pd(_mm256_broadcast_sd(a_frame + d), _mm256_loadu_pd(y));
      s0 = _mm256_fmadd_pd(diff, diff, s0);
    }
    __m256d squared = _mm256_add_pd(_mm256_add_pd(s0, s1), _mm256_add_pd(s2, s3));
    if (kCost == DtwLocalCost::kEuclidean) squared = _mm256_sqrt_pd(squared);
    _mm256_storeu_pd(cost + j, squared);
  }
#endif
  for (; j + kLanes <= hi + 1; j += kLanes) {
    double sum[4][kLanes] = {};
    int d = 0;
    for (; d + 4 <= dims; d += 4) {
      for (int k = 0; k < 4; ++k) {
        const double x = a_frame[d + k];
        const double* y = bt + static_cast<size_t>(d + k) * stride + j;
        for (int l = 0; l < kLanes; ++l) {
          const double diff = x - y[l];
          sum[k][l] = std::fma(diff, diff, sum[k][l]);
        }
      }
    }
    for (; d < dims; ++d) {
      const double x = a_frame[d];
      const double* y = bt + static_cast<size_t>(d) * stride + j;
      for (int l = 0; l < kLanes; ++l) {
        const double diff = x - y[l];
        sum[0][l] = std::fma(diff, diff, sum[0][l]);
      }
    }
    for (int l = 0; l < kLanes; ++l) {
      const double squared = (sum[0][l] + sum[1][l]) + (sum[2][l] + sum[3][l]);
      cost[j + l] = kCost == DtwLocalCost::kEuclidean ? std::sqrt(squared) : squared;
    }
  }
  for (; j <= hi; ++j) {
    double sum[4] = {0, 0, 0, 0};
    int d = 0;
    for (; d + 4 <= dims; d += 4) {
      for (int k = 0; k < 4; ++k) {
        const double diff = a_frame[d + k] - bt[static_cast<size_t>(d + k) * stride + j];
        sum[k] = std::fma(diff, diff, sum[k]);
      }
    }
    for (; d < dims; ++d) {
      const double diff = a_frame[d] - bt[static_cast<size_t>(d) * stride + j];
      sum[0] = std::fma(diff, diff, sum[0]);
    }
    const double squared = (sum[0] + sum[1]) + (sum[2] + sum[3]);
    cost[j] = kCost == DtwLocalCost::kEuclidean ? std::sqrt(squared) : squared;
  }
}

// Banded DTW over two rows. Row i of the DP lives at offsets 1..tb of its buffer; offset 0 stands
// for column -1, so the recurrence needs no bounds checks. Cells outside the band are never
// written; the two neighbours of the band that the next row reads are set to +infinity. Each row's
// local costs are computed first (RowCosts, the same values as LocalCost), then the recurrence
// runs over them.
template <DtwLocalCost kCost = DtwLocalCost::kSquaredEuclidean>
double DtwCore(const Series& a, const Series& b, int radius, double abandon_above,
               const Cancellation* cancel) {
  const int ta = a.length();
  const int tb = b.length();
  const int dims = a.dims();
  thread_local std::vector<double> buffer;
  thread_local std::vector<double> row_cost;
  thread_local std::vector<double> b_t;
  thread_local std::vector<double> a_d;
  buffer.assign(2 * static_cast<size_t>(tb + 1), kInf);
  row_cost.resize(tb);
  // Conversions to double are exact, so converting once up front changes no cost.
  const size_t stride = static_cast<size_t>(tb);
  b_t.resize(stride * dims);
  const float* b_data = b.data();
  for (int j = 0; j < tb; ++j) {
    for (int d = 0; d < dims; ++d) {
      b_t[static_cast<size_t>(d) * stride + j] = b_data[static_cast<size_t>(j) * dims + d];
    }
  }
  a_d.resize(static_cast<size_t>(ta) * dims);
  std::copy(a.data(), a.data() + static_cast<size_t>(ta) * dims, a_d.begin());
  double* prev = buffer.data();
  double* cur = prev + tb + 1;
  prev[0] = 0;  // D(-1, -1): the path starts at (0, 0)
  double* cost = row_cost.data();
  for (int i = 0; i < ta; ++i) {
    if (cancel != nullptr && i % 64 == 0 && !cancel->Check().ok()) return kInf;
    const int lo = std::max(0, i - radius);
    const int hi = std::min(tb - 1, i + radius);
    RowCosts<kCost>(a_d.data() + static_cast<size_t>(i) * dims, b_t.data(), stride, dims, lo, hi,
                    cost);
    cur[lo] = kInf;
    double left = kInf;
    double row_min = kInf;
    for (int j = lo; j <= hi; ++j) {
      const double best = std::min(left, std::min(prev[j], prev[j + 1]));
      left = cost[j] + best;
      cur[j + 1] = left;
      row_min = std::min(row_min, left);
    }
    if (hi + 2 <= tb) cur[hi + 2] = kInf;
    // Every cell descends from a cell of the previous row, so row minima never decrease.
    if (row_min > abandon_above) return kInf;
    std::swap(prev, cur);
    if (i == 0) cur[0] = kInf;  // no longer the start
  }
  return prev[tb];
}

// How far x lies outside [lower, upper], in double like FrameCost (so it never exceeds the
// distance to any value in the box); branch-free because the outcome is unpredictable.
inline double Excess(float x, float upper, float lower) {
  const double xd = x;
  return std::max(xd - static_cast<double>(upper), 0.0) +
         std::max(static_cast<double>(lower) - xd, 0.0);
}

// Per-dimension max and min of any window of query frames in O(dims), for LB_Keogh: a sparse table
// whose level k holds the max/min of the 2^k frames starting at each frame, so a window is the
// union of two overlapping power-of-two blocks. One table per query serves every band radius.
class WindowMinMax final {
 public:
  // Levels for windows of up to `max_window` frames; left unavailable when that would take more
  // than kMaxFloats per table (then LB_Keogh falls back to scanning windows, or is skipped).
  WindowMinMax(const Series& query, int max_window) : query_(query) {
    const int n = query.length();
    const int dims = query.dims();
    const int window = std::max(1, std::min(max_window, n));
    levels_ = FloorLog2(window) + 1;
    if (static_cast<double>(levels_) * n * dims > kMaxFloats) {
      levels_ = 0;
      return;
    }
    const size_t level_size = static_cast<size_t>(n) * dims;
    upper_.resize(level_size * levels_);
    lower_.resize(level_size * levels_);
    std::copy(query.data(), query.data() + level_size, upper_.begin());
    std::copy(query.data(), query.data() + level_size, lower_.begin());
    for (int k = 1; k < levels_; ++k) {
      const size_t half = (size_t{1} << (k - 1)) * dims;
      const size_t valid = (static_cast<size_t>(n) - (size_t{1} << k) + 1) * dims;
      const float* up_prev = &upper_[(k - 1) * level_size];
      const float* lo_prev = &lower_[(k - 1) * level_size];
      float* up = &upper_[k * level_size];
      float* lo = &lower_[k * level_size];
      for (size_t i = 0; i < valid; ++i) {
        up[i] = std::max(up_prev[i], up_prev[i + half]);
        lo[i] = std::min(lo_prev[i], lo_prev[i + half]);
      }
    }
  }

  bool available() const { return levels_ > 0; }

  // Squared distance from `frame` to the per-dimension [min, max] box of query frames [lo, hi].
  double BoxCost(int lo, int hi, const float* frame) const {
    const int dims = query_.dims();
    const size_t level_size = static_cast<size_t>(query_.length()) * dims;
    const int k = FloorLog2(hi - lo + 1);
    const size_t a = k * level_size + static_cast<size_t>(lo) * dims;
    const size_t b = k * level_size + static_cast<size_t>(hi - (1 << k) + 1) * dims;
    double sum[4] = {0, 0, 0, 0};
    for (int d = 0; d < dims; ++d) {
      const double excess = Excess(frame[d], std::max(upper_[a + d], upper_[b + d]),
                                   std::min(lower_[a + d], lower_[b + d]));
      sum[d & 3] += excess * excess;
    }
    return (sum[0] + sum[1]) + (sum[2] + sum[3]);
  }

 private:
  static constexpr double kMaxFloats = 1 << 22;  // 16 MiB per table

  static int FloorLog2(int x) { return 31 - __builtin_clz(static_cast<unsigned>(x)); }

  const Series& query_;
  int levels_ = 0;
  std::vector<float> upper_;  // levels x frames x dims
  std::vector<float> lower_;
};

// The same box cost by scanning the window; for one-off bounds whose table would be too large.
double ScanBoxCost(const Series& query, int lo, int hi, const float* frame) {
  const int dims = query.dims();
  double sum = 0;
  for (int d = 0; d < dims; ++d) {
    float upper = query.data()[static_cast<size_t>(lo) * dims + d];
    float lower = upper;
    for (int i = lo + 1; i <= hi; ++i) {
      upper = std::max(upper, query.data()[static_cast<size_t>(i) * dims + d]);
      lower = std::min(lower, query.data()[static_cast<size_t>(i) * dims + d]);
    }
    const double excess = Excess(frame[d], upper, lower);
    sum += excess * excess;
  }
  return sum;
}

// LB_Keogh with band radius `radius` (>= |Tq - Tc|, so every window is non-empty).
double KeoghBound(const Series& query, const WindowMinMax& table, const Series& candidate,
                  int radius) {
  const int n = query.length();
  const int dims = candidate.dims();
  double sum = 0;
  for (int j = 0; j < candidate.length(); ++j) {
    const int lo = std::max(0, j - radius);
    const int hi = std::min(n - 1, j + radius);
    const float* frame = candidate.data() + static_cast<size_t>(j) * dims;
    sum += table.available() ? table.BoxCost(lo, hi, frame) : ScanBoxCost(query, lo, hi, frame);
  }
  return sum;
}

int WindowSize(int n, int radius) { return std::min(n, 2 * radius + 1); }

absl::Status ValidateOptions(const DtwOptions& options) {
  if (std::isnan(options.band_fraction)) {
    return absl::InvalidArgumentError("DTW band_fraction is NaN");
  }
  return absl::OkStatus();
}

absl::Status CheckSeries(const Series* series, int dims, absl::string_view what) {
  if (series == nullptr) return absl::InvalidArgumentError(absl::StrCat(what, " is null"));
  absl::Status status = ValidateSeries(*series);
  if (!status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", status.message()));
  }
  if (dims >= 0 && series->dims() != dims) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " has ", series->dims(), " features, expected ", dims));
  }
  return absl::OkStatus();
}

absl::Status CheckSearch(const Series& query, absl::Span<const Series* const> references,
                         const DtwOptions& options) {
  absl::Status status = ValidateOptions(options);
  if (!status.ok()) return status;
  if (options.local_cost != DtwLocalCost::kSquaredEuclidean) {
    return absl::InvalidArgumentError(
        "DTW 1-NN search supports the squared Euclidean local cost only (its lower bounds do)");
  }
  status = CheckSeries(&query, -1, "query");
  if (!status.ok()) return status;
  if (references.empty()) return absl::InvalidArgumentError("no reference series");
  for (size_t k = 0; k < references.size(); ++k) {
    status = CheckSeries(references[k], query.dims(), absl::StrCat("reference ", k));
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

// The pruned search on validated input. If `distances` is not null, distances[k] receives the
// normalized distance of every reference computed to the end and +infinity for the others.
DtwNeighbor SearchNearest(const Series& query, absl::Span<const Series* const> references,
                          const DtwOptions& options, DtwSearchStats* stats, double* distances) {
  const int n = query.length();
  const size_t count = references.size();
  struct Candidate {
    size_t position;
    int radius;
    double kim;    // normalized LB_Kim
    double bound;  // normalized max(LB_Kim, LB_Keogh)
  };
  std::vector<Candidate> candidates(count);
  int max_window = 1;
  for (size_t k = 0; k < count; ++k) {
    candidates[k].radius = DtwBandRadius(options, n, references[k]->length());
    max_window = std::max(max_window, WindowSize(n, candidates[k].radius));
  }
  const WindowMinMax table(query, max_window);
  for (size_t k = 0; k < count; ++k) {
    const Series& ref = *references[k];
    const double norm = static_cast<double>(n + ref.length());
    const double kim = LbKim(query, ref);
    // Without a table LB_Keogh would cost as much as DTW itself; LB_Kim alone still prunes.
    const double keogh =
        table.available() ? KeoghBound(query, table, ref, candidates[k].radius) : 0.0;
    candidates[k].position = k;
    candidates[k].kim = kim / norm;
    candidates[k].bound = std::max(kim, keogh) / norm;
    if (distances != nullptr) distances[k] = kInf;
  }
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const Candidate& a, const Candidate& b) { return a.bound < b.bound; });

  DtwSearchStats local;
  local.candidates = static_cast<int64_t>(count);
  DtwNeighbor best{-1, kInf};
  for (size_t v = 0; v < count; ++v) {
    const Candidate& cand = candidates[v];
    const double limit = best.distance * kPruneMargin;
    if (cand.bound > limit) {
      // Sorted by bound: every later candidate is pruned as well.
      for (size_t w = v; w < count; ++w) {
        (candidates[w].kim > limit ? local.pruned_by_kim : local.pruned_by_keogh) += 1;
      }
      break;
    }
    const Series& ref = *references[cand.position];
    const double norm = static_cast<double>(n + ref.length());
    const double cost = DtwCore(query, ref, cand.radius, limit * norm, nullptr);
    if (cost == kInf) {
      ++local.abandoned;
      continue;
    }
    ++local.completed;
    const double distance = cost / norm;
    if (distances != nullptr) distances[cand.position] = distance;
    const int position = static_cast<int>(cand.position);
    if (distance < best.distance || (distance == best.distance && position < best.index)) {
      best = {position, distance};
    }
  }
  if (stats != nullptr) stats->Add(local);
  return best;
}

}  // namespace

int DtwBandRadius(const DtwOptions& options, int ta, int tb) {
  const int longer = std::max(ta, tb);
  const int difference = std::abs(ta - tb);
  int radius = longer;
  if (options.band_frames >= 0) {
    radius = std::min(options.band_frames, longer);
  } else if (options.band_fraction >= 0) {
    // The small offset keeps products such as 0.1 * 30 = 3.0000000000000004 from rounding up to 4.
    const double r = std::ceil(options.band_fraction * longer - 1e-9);
    radius = r >= longer ? longer : std::max(0, static_cast<int>(r));
  }
  return std::max(radius, difference);
}

int64_t DtwCells(const DtwOptions& options, int ta, int tb) {
  const int64_t width = std::min<int64_t>(tb, 2 * int64_t{DtwBandRadius(options, ta, tb)} + 1);
  return int64_t{ta} * width;
}

absl::StatusOr<DtwResult> Dtw(const Series& a, const Series& b, const DtwOptions& options) {
  absl::Status status = ValidateOptions(options);
  if (!status.ok()) return status;
  status = CheckSeries(&a, -1, "first series");
  if (!status.ok()) return status;
  status = CheckSeries(&b, a.dims(), "second series");
  if (!status.ok()) return status;
  const double cost = DtwDistance(a, b, options);
  return DtwResult{cost, cost / static_cast<double>(a.length() + b.length())};
}

double DtwDistance(const Series& a, const Series& b, const DtwOptions& options,
                   double abandon_above, const Cancellation* cancel) {
  if (!Comparable(a, b)) return kNaN;
  const int radius = DtwBandRadius(options, a.length(), b.length());
  if (options.local_cost == DtwLocalCost::kEuclidean) {
    return DtwCore<DtwLocalCost::kEuclidean>(a, b, radius, abandon_above, cancel);
  }
  return DtwCore(a, b, radius, abandon_above, cancel);
}

double NormalizedDtwDistance(const Series& a, const Series& b, const DtwOptions& options,
                             const Cancellation* cancel) {
  return DtwDistance(a, b, options, std::numeric_limits<double>::infinity(), cancel) /
         static_cast<double>(a.length() + b.length());
}

double LbKim(const Series& query, const Series& candidate) {
  if (!Comparable(query, candidate)) return kNaN;
  const int dims = query.dims();
  double bound = FrameCost(query.data(), candidate.data(), dims);
  if (query.length() > 1 || candidate.length() > 1) {
    bound += FrameCost(query.data() + static_cast<size_t>(query.length() - 1) * dims,
                       candidate.data() + static_cast<size_t>(candidate.length() - 1) * dims, dims);
  }
  return bound;
}

double LbKeogh(const Series& query, const Series& candidate, const DtwOptions& options) {
  if (!Comparable(query, candidate)) return kNaN;
  const int n = query.length();
  const int m = candidate.length();
  const int radius = DtwBandRadius(options, n, m);
  const WindowMinMax table(query, WindowSize(n, radius));
  return KeoghBound(query, table, candidate, radius);
}

void DtwSearchStats::Add(const DtwSearchStats& other) {
  candidates += other.candidates;
  pruned_by_kim += other.pruned_by_kim;
  pruned_by_keogh += other.pruned_by_keogh;
  abandoned += other.abandoned;
  completed += other.completed;
}

absl::StatusOr<DtwNeighbor> DtwNearest(const Series& query,
                                       absl::Span<const Series* const> references,
                                       const DtwOptions& options, DtwSearchStats* stats) {
  absl::Status status = CheckSearch(query, references, options);
  if (!status.ok()) return status;
  return SearchNearest(query, references, options, stats, nullptr);
}

absl::StatusOr<DtwNeighbor> DtwNearestBruteForce(const Series& query,
                                                 absl::Span<const Series* const> references,
                                                 const DtwOptions& options) {
  absl::Status status = CheckSearch(query, references, options);
  if (!status.ok()) return status;
  DtwNeighbor best{-1, kInf};
  for (size_t k = 0; k < references.size(); ++k) {
    const double distance = NormalizedDtwDistance(query, *references[k], options);
    if (best.index < 0 || distance < best.distance) best = {static_cast<int>(k), distance};
  }
  return best;
}

absl::StatusOr<ReferenceScorer> MakeDtwReferenceScorer(std::vector<const Series*> series,
                                                       const DtwOptions& options,
                                                       DtwSearchStats* stats) {
  absl::Status status = ValidateOptions(options);
  if (!status.ok()) return status;
  int dims = -1;
  for (size_t i = 0; i < series.size(); ++i) {
    status = CheckSeries(series[i], dims, absl::StrCat("series ", i));
    if (!status.ok()) return status;
    dims = series[i]->dims();
  }
  struct State {
    std::vector<const Series*> series;
    DtwOptions options;
    DtwSearchStats* stats;
    std::mutex mutex;
  };
  auto state = std::make_shared<State>();
  state->series = std::move(series);
  state->options = options;
  state->stats = stats;
  return ReferenceScorer([state](int query, absl::Span<const int> references, double* out) {
    const int size = static_cast<int>(state->series.size());
    // Out-of-range indices cannot be reported as a status here; NaN makes OneShotAccuracy fail.
    bool valid = query >= 0 && query < size;
    for (int r : references) valid = valid && r >= 0 && r < size;
    if (!valid || references.empty()) {
      std::fill(out, out + references.size(), kNaN);
      return;
    }
    thread_local std::vector<const Series*> refs;
    refs.clear();
    for (int r : references) refs.push_back(state->series[r]);
    DtwSearchStats local;
    SearchNearest(*state->series[query], refs, state->options, &local, out);
    for (size_t k = 0; k < references.size(); ++k) out[k] = -out[k];
    if (state->stats != nullptr) {
      std::lock_guard<std::mutex> lock(state->mutex);
      state->stats->Add(local);
    }
  });
}

absl::StatusOr<double> MeanMutualDistance(int n, const std::function<double(int, int)>& distance,
                                          const Cancellation& cancel) {
  if (n < 2) return 1.0;
  double sum = 0;
  for (int i = 0; i < n; ++i) {
    for (int j = i + 1; j < n; ++j) {
      if (absl::Status s = cancel.Check(); !s.ok()) return s;
      sum += distance(i, j);
    }
  }
  // A distance cut short by `cancel` is not a distance.
  if (absl::Status s = cancel.Check(); !s.ok()) return s;
  return sum / static_cast<double>(static_cast<int64_t>(n) * (n - 1) / 2);
}

}  // namespace srn
