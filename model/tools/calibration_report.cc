#include "model/tools/calibration_report.h"

#include <algorithm>
#include <numeric>
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

// The classes of `data` that have examples, in two halves drawn by `seed` (a partial Fisher-Yates
// shuffle of the engine's raw output, the same on every platform).
std::pair<std::vector<int>, std::vector<int>> HalvesByClass(const Dataset& data, uint64_t seed) {
  const std::set<int> present = [&] {
    std::set<int> labels;
    for (const Example& e : data.examples) labels.insert(e.label);
    return labels;
  }();
  std::vector<int> labels(present.begin(), present.end());
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i + 1 < labels.size(); ++i) {
    const size_t j = i + rng() % (labels.size() - i);
    std::swap(labels[i], labels[j]);
  }
  const auto middle = labels.begin() + static_cast<std::ptrdiff_t>(labels.size() / 2);
  return {std::vector<int>(labels.begin(), middle), std::vector<int>(middle, labels.end())};
}

// How thresholds carry over to classes the calibration did not see either: for each of
// `halvings` random halvings of the classes, calibrated on one half and measured on the other.
// One line per target: the mean and median FAR over the halvings, and the range. Empty (with
// the reason on `log`) when the halves are too small.
std::vector<std::string> CheckOnOtherClasses(const VerifyTrialScorer& scorer,
                                             const CalibrationRequest& request,
                                             std::ostream& log) {
  std::vector<std::vector<double>> fars(request.target_fars.size());
  std::vector<double> targets;
  int calibrated_on = 0, measured_on = 0;
  for (int h = 0; h < request.check_halvings; ++h) {
    const auto [first, second] = HalvesByClass(request.data, request.trials.seed + h);
    absl::StatusOr<VerifyTrials> a = scorer.Score(request.trials, &first);
    absl::StatusOr<VerifyTrials> b = scorer.Score(request.trials, &second);
    absl::StatusOr<ThresholdCalibration> from_a =
        a.ok() ? CalibrateThresholds(*a, request.target_fars, request.default_choice) : a.status();
    absl::StatusOr<ThresholdCalibration> on_b =
        from_a.ok() && b.ok() ? MeasureAtThresholds(*from_a, *b)
                              : absl::StatusOr<ThresholdCalibration>(
                                    from_a.ok() ? b.status() : from_a.status());
    if (!on_b.ok()) {
      log << "calibrate: no check on other classes (" << on_b.status().message() << ")\n";
      return {};
    }
    targets.clear();
    for (size_t k = 0; k < on_b->points.size(); ++k) {
      targets.push_back(on_b->points[k].target_far);
      fars[k].push_back(on_b->points[k].far);
    }
    calibrated_on = a->subjects;
    measured_on = b->subjects;
  }
  std::vector<std::string> lines;
  for (size_t k = 0; k < targets.size(); ++k) {
    std::vector<double>& f = fars[k];
    std::sort(f.begin(), f.end());
    const size_t m = f.size() / 2;
    const double median = f.size() % 2 ? f[m] : (f[m - 1] + f[m]) / 2;
    const double mean = std::accumulate(f.begin(), f.end(), 0.0) / static_cast<double>(f.size());
    lines.push_back(absl::StrFormat(
        "check: FAR <= %g calibrated on %d classes, measured on %d others, %d random halvings: "
        "FAR mean %.4f (%.2fx the target), median %.4f, range %.4f-%.4f",
        targets[k], calibrated_on, measured_on, request.check_halvings, mean, mean / targets[k],
        median, f.front(), f.back()));
  }
  return lines;
}

}  // namespace

absl::StatusOr<CalibrationReport> RunCalibration(const CalibrationRequest& request,
                                                std::ostream& log) {
  const SimilarityModel& model = *request.model;
  SRN_RETURN_IF_ERROR(RequireEmbeddingScore(model));
  SRN_RETURN_IF_ERROR(RequireUnseenClasses(model, request.data));
  SRN_ASSIGN_OR_RETURN(const VerifyTrialScorer scorer,
                       VerifyTrialScorer::Create(model, request.data, request.trials.threads));
  std::vector<std::string> lines = CheckOnOtherClasses(scorer, request, log);

  log << "calibrate: scoring Verify trials with " << request.trials.references
      << " reference(s), " << request.trials.draws << " draws\n";
  SRN_ASSIGN_OR_RETURN(const VerifyTrials trials, scorer.Score(request.trials));
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
