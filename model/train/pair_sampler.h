#ifndef SRN_MODEL_TRAIN_PAIR_SAMPLER_H_
#define SRN_MODEL_TRAIN_PAIR_SAMPLER_H_

#include <random>
#include <vector>

#include "absl/status/statusor.h"
#include "model/data/dataset.h"
#include "model/nn/pair_loss.h"

namespace srn {

// Draws labelled pairs of example indices from a dataset. Similar pairs are two genuine examples
// of one class. Dissimilar pairs are genuine examples of two different classes or, in signature
// mode, a genuine example paired with a skilled forgery of the same class. Immutable after
// Create; Sample* are const and take the caller's generator, so one sampler serves many threads.
class PairSampler final {
 public:
  struct Options {
    // Of the dissimilar pairs whose first example's class has forgeries, the fraction that pairs
    // it with one of them (the rest pair it with another class). 0 ignores forgeries as negatives.
    double forgery_fraction = 0.5;
  };

  // FailedPrecondition when no class has two genuine examples, or when there is nothing to pair
  // dissimilar (one class and no forgeries).
  static absl::StatusOr<PairSampler> Create(const Dataset& data, const Options& options);

  Pair SampleSimilar(std::mt19937_64* rng) const;
  Pair SampleDissimilar(std::mt19937_64* rng) const;
  // n pairs, half similar (rounded down) and the rest dissimilar, in random order.
  std::vector<Pair> SampleBalanced(int n, std::mt19937_64* rng) const;

 private:
  PairSampler() = default;

  Options options_;
  std::vector<int> labels_;                    // example -> label
  std::vector<std::vector<int>> genuine_;      // label -> genuine example indices
  std::vector<std::vector<int>> forgeries_;    // label -> forgery example indices
  std::vector<int> similar_anchors_;           // genuine examples whose class has another genuine
  std::vector<int> all_genuine_;               // every genuine example
  int genuine_classes_ = 0;                    // classes with at least one genuine example
};

}  // namespace srn

#endif  // SRN_MODEL_TRAIN_PAIR_SAMPLER_H_
