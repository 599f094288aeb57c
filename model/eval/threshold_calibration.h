#ifndef SRN_MODEL_EVAL_THRESHOLD_CALIBRATION_H_
#define SRN_MODEL_EVAL_THRESHOLD_CALIBRATION_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "model/data/dataset.h"
#include "model/nn/similarity_model.h"

namespace srn {

// Acceptance thresholds for any model (`srn-eval --calibrate`): Verify trials scored on classes
// the model never saw, the threshold for each target false-accept rate read off them, recorded
// in the weights file (ModelMetadata::thresholds) for srn-server to accept at. Plain functions;
// thread-compatible.

// Scored Verify trials: labels 1 for a genuine query, 0 for an impostor.
struct VerifyTrials {
  std::vector<double> scores;  // similarities in [0, 1], as srn-server's Verify returns them
  std::vector<int> labels;
  int64_t genuine = 0;
  int64_t impostor = 0;
  int subjects = 0;  // classes enrolled as subjects (with references + 1 genuine examples)
};

struct VerifyTrialOptions {
  int references = 1;  // enrolled per subject; Verify averages the similarities (mean fusion)
  int draws = 10;      // times the references are drawn anew for every subject
  uint64_t seed = 1;
  int threads = 0;     // 0: DefaultThreads()
};

// The Verify trials of a dataset as srn-server scores them with an embedding model: every class
// with at least references + 1 genuine examples is a subject; each draw enrolls `references`
// of its genuine examples (uniformly, by `seed`), and every other example queries it: the
// class's other genuine examples as genuine trials, every example of the other classes and the
// class's own skilled forgeries as impostor trials. The score is the mean of the head's
// similarities to the references. The data is embedded once, when the scorer is made; the
// model and the data must outlive it. Thread-compatible.
class VerifyTrialScorer final {
 public:
  // InvalidArgument, saying what to do, when the model does not take the data's features or the
  // data is empty.
  static absl::StatusOr<VerifyTrialScorer> Create(const SimilarityModel& model,
                                                  const Dataset& data, int threads = 0);

  // The trials among the classes `classes` (label ids; nullptr: every class), as if the data
  // held only those. InvalidArgument, saying what to do, when fewer than 2 of them can be
  // subjects.
  absl::StatusOr<VerifyTrials> Score(const VerifyTrialOptions& options,
                                     const std::vector<int>* classes = nullptr) const;

 private:
  VerifyTrialScorer(const SimilarityModel& model, const Dataset& data, RowMatrix embeddings)
      : model_(&model), data_(&data), embeddings_(std::move(embeddings)) {}

  const SimilarityModel* model_;
  const Dataset* data_;
  RowMatrix embeddings_;
};

// VerifyTrialScorer::Create(model, data, options.threads), then Score(options).
absl::StatusOr<VerifyTrials> ScoreVerifyTrials(const SimilarityModel& model, const Dataset& data,
                                               const VerifyTrialOptions& options);

// Reads the thresholds off scored trials: for each target FAR (each in (0, 1)) the lowest
// threshold whose FAR is at most the target, and the equal-error point. `default_choice` is "eer"
// or "far=<t>" with t one of the targets ("" picks the first target). InvalidArgument when a
// target is outside (0, 1), the choice names no target, or there are too few impostor trials to
// measure a target at all (fewer than 1 / target).
absl::StatusOr<ThresholdCalibration> CalibrateThresholds(const VerifyTrials& trials,
                                                         absl::Span<const double> target_fars,
                                                         const std::string& default_choice);

// The FAR and FRR of `trials` at each of `calibration`'s thresholds, as a calibration of the same
// shape (its targets and thresholds kept, far and frr measured on `trials`, the equal-error point
// that of `trials`): how thresholds hold on other classes.
absl::StatusOr<ThresholdCalibration> MeasureAtThresholds(const ThresholdCalibration& calibration,
                                                         const VerifyTrials& trials);

// Human-readable lines: one per point, the equal-error point, the default and what it was
// measured on.
std::vector<std::string> DescribeThresholdCalibration(const ThresholdCalibration& calibration);

}  // namespace srn

#endif  // SRN_MODEL_EVAL_THRESHOLD_CALIBRATION_H_
