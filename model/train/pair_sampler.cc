#include "model/train/pair_sampler.h"

#include <algorithm>

namespace srn {
namespace {

int Uniform(int n, std::mt19937_64* rng) {
  return static_cast<int>(std::uniform_int_distribution<int>(0, n - 1)(*rng));
}

}  // namespace

absl::StatusOr<PairSampler> PairSampler::Create(const Dataset& data, const Options& options) {
  PairSampler s;
  s.options_ = options;
  int max_label = -1;
  for (const Example& e : data.examples) max_label = std::max(max_label, e.label);
  s.genuine_.resize(max_label + 1);
  s.forgeries_.resize(max_label + 1);
  for (int i = 0; i < static_cast<int>(data.examples.size()); ++i) {
    const Example& e = data.examples[i];
    if (e.label < 0) return absl::InvalidArgumentError("negative label in training data");
    s.labels_.push_back(e.label);
    (e.forgery ? s.forgeries_ : s.genuine_)[e.label].push_back(i);
    if (!e.forgery) s.all_genuine_.push_back(i);
  }
  bool has_forgery_negatives = false;
  for (int label = 0; label <= max_label; ++label) {
    if (!s.genuine_[label].empty()) ++s.genuine_classes_;
    if (s.genuine_[label].size() >= 2) {
      s.similar_anchors_.insert(s.similar_anchors_.end(), s.genuine_[label].begin(),
                                s.genuine_[label].end());
    }
    if (!s.genuine_[label].empty() && !s.forgeries_[label].empty()) has_forgery_negatives = true;
  }
  if (s.similar_anchors_.empty()) {
    return absl::FailedPreconditionError(
        "no class has two genuine examples, so there are no similar pairs to train on");
  }
  if (s.genuine_classes_ < 2 && !(has_forgery_negatives && options.forgery_fraction > 0)) {
    return absl::FailedPreconditionError(
        "the data has one class and no forgeries, so there are no dissimilar pairs to train on");
  }
  return s;
}

Pair PairSampler::SampleSimilar(std::mt19937_64* rng) const {
  const int a = similar_anchors_[Uniform(static_cast<int>(similar_anchors_.size()), rng)];
  const std::vector<int>& same = genuine_[labels_[a]];
  int b = a;
  while (b == a) b = same[Uniform(static_cast<int>(same.size()), rng)];
  return {a, b, 1};
}

Pair PairSampler::SampleDissimilar(std::mt19937_64* rng) const {
  const int a = all_genuine_[Uniform(static_cast<int>(all_genuine_.size()), rng)];
  const std::vector<int>& forged = forgeries_[labels_[a]];
  const bool use_forgery =
      !forged.empty() && (genuine_classes_ < 2 || std::uniform_real_distribution<double>(
                                                      0, 1)(*rng) < options_.forgery_fraction);
  if (use_forgery) return {a, forged[Uniform(static_cast<int>(forged.size()), rng)], 0};
  int b = a;
  while (labels_[b] == labels_[a])
    b = all_genuine_[Uniform(static_cast<int>(all_genuine_.size()), rng)];
  return {a, b, 0};
}

std::vector<Pair> PairSampler::SampleBalanced(int n, std::mt19937_64* rng) const {
  std::vector<Pair> pairs;
  pairs.reserve(n);
  for (int i = 0; i < n / 2; ++i) pairs.push_back(SampleSimilar(rng));
  for (int i = n / 2; i < n; ++i) pairs.push_back(SampleDissimilar(rng));
  std::shuffle(pairs.begin(), pairs.end(), *rng);
  return pairs;
}

}  // namespace srn
