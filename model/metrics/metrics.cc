#include "model/metrics/metrics.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <mutex>
#include <numeric>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"

namespace srn {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

struct Counts {
  int64_t positives = 0;
  int64_t negatives = 0;
};

absl::StatusOr<Counts> CheckScoredPairs(absl::Span<const double> scores,
                                        absl::Span<const int> labels) {
  if (scores.size() != labels.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("got ", scores.size(), " scores but ", labels.size(), " labels"));
  }
  Counts counts;
  for (size_t i = 0; i < scores.size(); ++i) {
    if (!std::isfinite(scores[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("score ", i, " is not finite (", scores[i], ")"));
    }
    if (labels[i] == 1) {
      ++counts.positives;
    } else if (labels[i] == 0) {
      ++counts.negatives;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("label ", i, " is ", labels[i], "; labels must be 0 or 1"));
    }
  }
  if (counts.positives == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("no genuine pairs (label 1) among ", scores.size(), " scores"));
  }
  if (counts.negatives == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("no impostor pairs (label 0) among ", scores.size(), " scores"));
  }
  return counts;
}

// Indices of `scores` ordered by decreasing score (stable, so the order is deterministic).
std::vector<size_t> OrderByDecreasingScore(absl::Span<const double> scores) {
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  return order;
}

// Index k of the first point whose successor has far >= frr while it has far < frr, or -1.
int EerBracket(const std::vector<OperatingPoint>& curve) {
  for (size_t k = 0; k + 1 < curve.size(); ++k) {
    if (curve[k].far - curve[k].frr < 0 && curve[k + 1].far - curve[k + 1].frr >= 0) {
      return static_cast<int>(k);
    }
  }
  return -1;
}

// Shortest text that reads back as the same double ("inf" for infinity).
std::string FormatDouble(double value) {
  char buffer[64];
  const std::to_chars_result result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

// Uniform integer in [0, n) from a 64-bit engine, without modulo bias, defined independently of
// the standard library's distributions (whose output differs between implementations).
uint64_t UniformBelow(std::mt19937_64& rng, uint64_t n) {
  const uint64_t reject_below = (0 - n) % n;  // 2^64 mod n
  while (true) {
    const uint64_t x = rng();
    if (x >= reject_below) return x % n;
  }
}

}  // namespace

absl::StatusOr<double> Auc(absl::Span<const double> scores, absl::Span<const int> labels) {
  absl::StatusOr<Counts> counts = CheckScoredPairs(scores, labels);
  if (!counts.ok()) return counts.status();
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  // Sum of the (1-based, tie-averaged) ranks of the genuine pairs.
  double positive_rank_sum = 0;
  for (size_t begin = 0; begin < order.size();) {
    size_t end = begin + 1;
    while (end < order.size() && scores[order[end]] == scores[order[begin]]) ++end;
    const double average_rank = 0.5 * static_cast<double>(begin + 1 + end);
    for (size_t i = begin; i < end; ++i) {
      if (labels[order[i]] == 1) positive_rank_sum += average_rank;
    }
    begin = end;
  }
  const double p = static_cast<double>(counts->positives);
  const double n = static_cast<double>(counts->negatives);
  const double u = positive_rank_sum - p * (p + 1) / 2;
  return u / (p * n);
}

absl::StatusOr<std::vector<OperatingPoint>> OperatingPoints(absl::Span<const double> scores,
                                                            absl::Span<const int> labels) {
  absl::StatusOr<Counts> counts = CheckScoredPairs(scores, labels);
  if (!counts.ok()) return counts.status();
  const double p = static_cast<double>(counts->positives);
  const double n = static_cast<double>(counts->negatives);
  const std::vector<size_t> order = OrderByDecreasingScore(scores);
  std::vector<OperatingPoint> curve;
  curve.push_back({kInf, 0.0, 1.0});
  int64_t accepted_genuine = 0;
  int64_t accepted_impostor = 0;
  for (size_t begin = 0; begin < order.size();) {
    const double threshold = scores[order[begin]];
    size_t end = begin;
    for (; end < order.size() && scores[order[end]] == threshold; ++end) {
      (labels[order[end]] == 1 ? accepted_genuine : accepted_impostor) += 1;
    }
    curve.push_back({threshold, static_cast<double>(accepted_impostor) / n,
                     static_cast<double>(counts->positives - accepted_genuine) / p});
    begin = end;
  }
  return curve;
}

absl::StatusOr<EerResult> Eer(absl::Span<const double> scores, absl::Span<const int> labels) {
  absl::StatusOr<std::vector<OperatingPoint>> curve = OperatingPoints(scores, labels);
  if (!curve.ok()) return curve.status();
  // The curve starts at far - frr = -1 and ends at +1, so a bracket always exists.
  const int k = EerBracket(*curve);
  if (k < 0) return absl::InternalError("operating points do not cross FAR = FRR");
  const OperatingPoint& left = (*curve)[k];
  const OperatingPoint& right = (*curve)[k + 1];
  const double d_left = left.far - left.frr;
  const double d_right = right.far - right.frr;
  const double t = -d_left / (d_right - d_left);
  EerResult result;
  result.eer = left.far + t * (right.far - left.far);
  result.threshold = std::isinf(left.threshold)
                         ? right.threshold
                         : left.threshold + t * (right.threshold - left.threshold);
  return result;
}

absl::StatusOr<OperatingPoint> AtThreshold(absl::Span<const double> scores,
                                           absl::Span<const int> labels, double threshold) {
  absl::StatusOr<Counts> counts = CheckScoredPairs(scores, labels);
  if (!counts.ok()) return counts.status();
  if (std::isnan(threshold)) return absl::InvalidArgumentError("threshold is NaN");
  int64_t accepted_genuine = 0;
  int64_t accepted_impostor = 0;
  for (size_t i = 0; i < scores.size(); ++i) {
    if (scores[i] >= threshold) (labels[i] == 1 ? accepted_genuine : accepted_impostor) += 1;
  }
  return OperatingPoint{
      threshold, static_cast<double>(accepted_impostor) / static_cast<double>(counts->negatives),
      static_cast<double>(counts->positives - accepted_genuine) /
          static_cast<double>(counts->positives)};
}

absl::StatusOr<OperatingPoint> AtFar(absl::Span<const double> scores, absl::Span<const int> labels,
                                     double target_far) {
  if (!(target_far >= 0 && target_far <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("target FAR must be in [0, 1], got ", target_far));
  }
  absl::StatusOr<std::vector<OperatingPoint>> curve = OperatingPoints(scores, labels);
  if (!curve.ok()) return curve.status();
  // FAR never decreases along the curve and FRR never increases: the last admissible point wins.
  OperatingPoint best = curve->front();
  for (const OperatingPoint& point : *curve) {
    if (point.far > target_far) break;
    best = point;
  }
  return best;
}

std::vector<OperatingPoint> ThinCurve(const std::vector<OperatingPoint>& curve, int max_points) {
  const size_t budget = static_cast<size_t>(std::max(max_points, 2));
  if (curve.size() <= budget) return curve;
  const size_t last = curve.size() - 1;
  std::vector<size_t> keep = {0, last};
  if (budget >= 4) {
    const int k = EerBracket(curve);
    if (k >= 0) {
      keep.push_back(static_cast<size_t>(k));
      keep.push_back(static_cast<size_t>(k) + 1);
    }
  }
  std::sort(keep.begin(), keep.end());
  keep.erase(std::unique(keep.begin(), keep.end()), keep.end());
  const size_t free_slots = budget - keep.size();

  // Cumulative L1 length along the curve; equal steps of it spread points evenly on a plot.
  std::vector<double> length(curve.size(), 0.0);
  for (size_t i = 1; i < curve.size(); ++i) {
    length[i] = length[i - 1] + std::abs(curve[i].far - curve[i - 1].far) +
                std::abs(curve[i].frr - curve[i - 1].frr);
  }
  const double total = length[last];
  for (size_t q = 1; q <= free_slots; ++q) {
    const double fraction = static_cast<double>(q) / static_cast<double>(free_slots + 1);
    size_t index;
    if (total > 0) {
      index = static_cast<size_t>(std::lower_bound(length.begin(), length.end(), fraction * total) -
                                  length.begin());
    } else {
      index = static_cast<size_t>(std::llround(fraction * static_cast<double>(last)));
    }
    keep.push_back(std::min(index, last));
  }
  std::sort(keep.begin(), keep.end());
  keep.erase(std::unique(keep.begin(), keep.end()), keep.end());
  std::vector<OperatingPoint> thinned;
  thinned.reserve(keep.size());
  for (size_t index : keep) thinned.push_back(curve[index]);
  return thinned;
}

absl::Status WriteOperatingPointsCsv(const std::vector<OperatingPoint>& curve,
                                     const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "w");
  if (file == nullptr) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot open '", path, "' for writing"));
  }
  std::string text = "threshold,far,frr\n";
  for (const OperatingPoint& point : curve) {
    absl::StrAppend(&text, FormatDouble(point.threshold), ",", FormatDouble(point.far), ",",
                    FormatDouble(point.frr), "\n");
  }
  const bool written = std::fwrite(text.data(), 1, text.size(), file) == text.size();
  const int write_errno = errno;
  if (std::fclose(file) != 0 || !written) {
    return absl::ErrnoToStatus(written ? errno : write_errno,
                               absl::StrCat("cannot write '", path, "'"));
  }
  return absl::OkStatus();
}

absl::StatusOr<OneShotResult> OneShotAccuracyBatch(absl::Span<const int> labels, int draws,
                                                   uint64_t seed, const ReferenceScorer& scorer,
                                                   int threads) {
  if (draws < 1) return absl::InvalidArgumentError(absl::StrCat("draws must be >= 1, got ", draws));
  if (threads < 1) {
    return absl::InvalidArgumentError(absl::StrCat("threads must be >= 1, got ", threads));
  }
  if (!scorer) return absl::InvalidArgumentError("score function is empty");

  std::map<int, std::vector<int>> members_by_label;
  for (size_t i = 0; i < labels.size(); ++i) {
    members_by_label[labels[i]].push_back(static_cast<int>(i));
  }
  if (members_by_label.size() < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "one-shot classification needs at least 2 classes, got ", members_by_label.size()));
  }
  const int num_classes = static_cast<int>(members_by_label.size());
  std::vector<const std::vector<int>*> members;  // by class index (increasing label)
  std::vector<int> class_of(labels.size());      // example -> class index
  for (const auto& [label, indices] : members_by_label) {
    for (int i : indices) class_of[i] = static_cast<int>(members.size());
    members.push_back(&indices);
  }
  const int64_t queries_per_draw = static_cast<int64_t>(labels.size()) - num_classes;
  if (queries_per_draw == 0) {
    return absl::InvalidArgumentError(
        "one-shot classification needs a class with at least 2 examples to provide queries");
  }

  // All draws up front, sequentially, so the random stream does not depend on `threads`.
  std::mt19937_64 rng(seed);
  std::vector<int> references(static_cast<size_t>(draws) * num_classes);
  std::vector<int> queries(static_cast<size_t>(draws) * queries_per_draw);
  std::vector<char> is_reference(labels.size());
  for (int d = 0; d < draws; ++d) {
    std::fill(is_reference.begin(), is_reference.end(), 0);
    for (int c = 0; c < num_classes; ++c) {
      const std::vector<int>& m = *members[c];
      const int pick = m[UniformBelow(rng, m.size())];
      references[static_cast<size_t>(d) * num_classes + c] = pick;
      is_reference[pick] = 1;
    }
    size_t q = static_cast<size_t>(d) * queries_per_draw;
    for (size_t i = 0; i < labels.size(); ++i) {
      if (!is_reference[i]) queries[q++] = static_cast<int>(i);
    }
  }

  const int64_t total_items = static_cast<int64_t>(draws) * queries_per_draw;
  const int num_threads = static_cast<int>(std::min<int64_t>(threads, total_items));
  std::vector<std::vector<int64_t>> correct(num_threads, std::vector<int64_t>(draws, 0));
  std::atomic<int64_t> next_item{0};
  std::atomic<bool> failed{false};
  std::mutex error_mutex;
  absl::Status error;
  auto work = [&](int thread_index) {
    constexpr int64_t kChunk = 8;
    std::vector<double> out(num_classes);
    std::vector<int64_t>& my_correct = correct[thread_index];
    while (!failed.load(std::memory_order_relaxed)) {
      const int64_t begin = next_item.fetch_add(kChunk, std::memory_order_relaxed);
      if (begin >= total_items) break;
      const int64_t end = std::min(begin + kChunk, total_items);
      for (int64_t item = begin; item < end; ++item) {
        const int64_t d = item / queries_per_draw;
        const int query = queries[item];
        absl::Span<const int> refs(&references[d * num_classes], num_classes);
        scorer(query, refs, out.data());
        int best = 0;
        for (int c = 0; c < num_classes; ++c) {
          if (std::isnan(out[c])) {
            std::lock_guard<std::mutex> lock(error_mutex);
            if (error.ok()) {
              error = absl::InvalidArgumentError(absl::StrCat(
                  "score of query ", query, " against reference ", refs[c], " is NaN"));
            }
            failed.store(true);
            return;
          }
          if (out[c] > out[best]) best = c;
        }
        if (best == class_of[query]) ++my_correct[d];
      }
    }
  };
  if (num_threads == 1) {
    work(0);
  } else {
    std::vector<std::thread> pool;
    pool.reserve(num_threads);
    for (int t = 0; t < num_threads; ++t) pool.emplace_back(work, t);
    for (std::thread& thread : pool) thread.join();
  }
  if (failed.load()) return error;

  // From the integer counts, so that equal fractions give a standard deviation of exactly 0.
  int64_t sum = 0;
  double sum_of_squares = 0;
  for (int d = 0; d < draws; ++d) {
    int64_t total = 0;
    for (const std::vector<int64_t>& c : correct) total += c[d];
    sum += total;
    sum_of_squares += static_cast<double>(total) * static_cast<double>(total);
  }
  const double scale = static_cast<double>(draws) * static_cast<double>(queries_per_draw);
  const double mean = static_cast<double>(sum) / scale;
  // Var = (draws * sum(c^2) - (sum c)^2) / (draws * Q)^2, exact while draws * Q < 2^26.
  const double spread = static_cast<double>(draws) * sum_of_squares -
                        static_cast<double>(sum) * static_cast<double>(sum);
  const double variance = std::max(0.0, spread) / (scale * scale);
  return OneShotResult{mean, std::sqrt(variance), draws, static_cast<int>(queries_per_draw)};
}

absl::StatusOr<OneShotResult> OneShotAccuracy(absl::Span<const int> labels, int draws,
                                              uint64_t seed, const PairScore& score, int threads) {
  if (!score) return absl::InvalidArgumentError("score function is empty");
  ReferenceScorer scorer = [&score](int query, absl::Span<const int> references, double* out) {
    for (size_t k = 0; k < references.size(); ++k) out[k] = score(query, references[k]);
  };
  return OneShotAccuracyBatch(labels, draws, seed, scorer, threads);
}

}  // namespace srn
