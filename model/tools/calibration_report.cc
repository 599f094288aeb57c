#include "model/tools/calibration_report.h"

#include <algorithm>
#include <random>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "model/signature/verification.h"
#include "model/weights/weights_file.h"

namespace srn {
namespace {

// FailedPrecondition when the model's Verify score is not the embedding similarity that the
// thresholds are measured on.
absl::Status RequireEmbeddingScore(const SimilarityModel& model) {
  SRN_ASSIGN_OR_RETURN(const VerificationCalibration v, ModelVerificationCalibration(model));
  const bool fused = v.dtw_fusion.enabled() && model.preprocessor().kind == FeatureKind::kSignature;
  if (v.learned == LearnedScore::kStatesDtw || fused) {
    return absl::FailedPreconditionError(
        "this model's Verify score is already calibrated by its verification record (0.5 at "
        "the equal-error point, docs/DEFAULT_MODEL.md): its thresholds for other false-accept "
        "rates come from srn-eval --protocol=cross-dataset --thresholds=...");
  }
  return absl::OkStatus();
}

// FailedPrecondition naming the classes of `data` the model was trained on.
absl::Status RequireUnseenClasses(const SimilarityModel& model, const Dataset& data) {
  const std::vector<std::string>& trained = model.metadata().trained_classes;
  std::vector<std::string> seen;
  for (const std::string& name : data.ClassNames()) {
    if (std::binary_search(trained.begin(), trained.end(), name)) seen.push_back(name);
  }
  if (seen.empty()) return absl::OkStatus();
  const size_t shown = std::min<size_t>(seen.size(), 10);
  return absl::FailedPreconditionError(absl::StrCat(
      "the model was trained on ", seen.size(), " of these classes (",
      absl::StrJoin(seen.begin(), seen.begin() + shown, ", "), seen.size() > shown ? ", ..." : "",
      "): thresholds measured on them would accept too much. Calibrate on classes it never saw "
      "(srn-eval --protocol=test on a manifest of other classes; `srnctl model-info` lists the "
      "trained ones)"));
}

// The classes of `data` split in two halves by `seed` (a partial Fisher-Yates shuffle of the
// engine's raw output, the same on every platform).
std::pair<Dataset, Dataset> HalvesByClass(const Dataset& data, uint64_t seed) {
  std::vector<int> labels;
  std::set<int> present;
  for (const Example& e : data.examples) present.insert(e.label);
  labels.assign(present.begin(), present.end());
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i + 1 < labels.size(); ++i) {
    const size_t j = i + rng() % (labels.size() - i);
    std::swap(labels[i], labels[j]);
  }
  const std::set<int> first(labels.begin(), labels.begin() + labels.size() / 2);
  return {data.Filter([&](const Example& e) { return first.count(e.label) > 0; }),
          data.Filter([&](const Example& e) { return first.count(e.label) == 0; })};
}

}  // namespace

absl::StatusOr<CalibrationReport> RunCalibration(const CalibrationRequest& request,
                                                std::ostream& log) {
  const SimilarityModel& model = *request.model;
  SRN_RETURN_IF_ERROR(RequireEmbeddingScore(model));
  SRN_RETURN_IF_ERROR(RequireUnseenClasses(model, request.data));
  std::vector<std::string> lines;

  // How thresholds carry over to classes the calibration did not see either: calibrated on one
  // half of the classes, measured on the other (skipped when a half is too small).
  const auto [half_a, half_b] = HalvesByClass(request.data, request.trials.seed);
  absl::StatusOr<VerifyTrials> trials_a = ScoreVerifyTrials(model, half_a, request.trials);
  absl::StatusOr<VerifyTrials> trials_b = ScoreVerifyTrials(model, half_b, request.trials);
  absl::StatusOr<ThresholdCalibration> from_a =
      trials_a.ok() ? CalibrateThresholds(*trials_a, request.target_fars, request.default_choice)
                    : trials_a.status();
  if (from_a.ok() && trials_b.ok()) {
    SRN_ASSIGN_OR_RETURN(const ThresholdCalibration on_b, MeasureAtThresholds(*from_a, *trials_b));
    for (size_t k = 0; k < on_b.points.size(); ++k) {
      const ThresholdCalibration::Point& p = on_b.points[k];
      lines.push_back(absl::StrFormat(
          "check: threshold %.6f for FAR <= %g from %d classes, on %d other classes: FAR %.4f "
          "(%.2fx the target), FRR %.4f",
          p.threshold, p.target_far, trials_a->subjects, trials_b->subjects, p.far,
          p.far / p.target_far, p.frr));
    }
  } else {
    const absl::Status why = from_a.ok() ? trials_b.status() : from_a.status();
    log << "calibrate: no half-and-half check (" << why.message() << ")\n";
  }

  log << "calibrate: scoring Verify trials with " << request.trials.references
      << " reference(s), " << request.trials.draws << " draws\n";
  SRN_ASSIGN_OR_RETURN(const VerifyTrials trials,
                       ScoreVerifyTrials(model, request.data, request.trials));
  SRN_ASSIGN_OR_RETURN(ThresholdCalibration calibration,
                       CalibrateThresholds(trials, request.target_fars, request.default_choice));
  calibration.references = request.trials.references;
  calibration.measured_on =
      absl::StrCat(request.measured_on, ": ", trials.subjects, " classes never trained on");
  for (const ThresholdCalibration::Point& p : calibration.points) {
    if (static_cast<double>(trials.impostor) * p.target_far < 10) {
      log << absl::StrFormat(
          "calibrate: warning: only %d impostor trials for a FAR of %g, so its threshold rests "
          "on fewer than 10 accepted impostors; more classes or --draws make it steadier\n",
          trials.impostor, p.target_far);
    }
  }
  for (std::string& line : DescribeThresholdCalibration(calibration)) {
    lines.push_back(std::move(line));
  }

  ModelMetadata metadata = model.metadata();
  metadata.thresholds = calibration;
  SRN_ASSIGN_OR_RETURN(const std::shared_ptr<const SimilarityModel> calibrated,
                       SimilarityModel::Create(model.architecture(), model.preprocessor(),
                                               model.params(), std::move(metadata)));
  SRN_RETURN_IF_ERROR(SaveModel(*calibrated, request.out));
  lines.push_back(absl::StrFormat(
      "wrote %s (fingerprint %s): srn-server accepts at %.6f by default; `srnctl model-info` "
      "shows the calibration",
      request.out, ModelFingerprint(*calibrated), calibration.default_threshold));
  return CalibrationReport{std::move(lines), std::move(calibration)};
}

}  // namespace srn
