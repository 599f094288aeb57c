#include "model/signature/verification.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/status_macros.h"

namespace srn {

absl::StatusOr<ReferenceFusion> ParseReferenceFusion(const std::string& name) {
  if (name == "max") return ReferenceFusion::kMax;
  if (name == "mean") return ReferenceFusion::kMean;
  if (name == "topk") return ReferenceFusion::kTopKMean;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown reference fusion '", name, "' (expected max, mean or topk)"));
}

std::string ReferenceFusionName(ReferenceFusion fusion) {
  switch (fusion) {
    case ReferenceFusion::kMax: return "max";
    case ReferenceFusion::kMean: return "mean";
    case ReferenceFusion::kTopKMean: return "topk";
  }
  return "unknown";
}

absl::StatusOr<ScoreNormalization> ParseScoreNormalization(const std::string& name) {
  if (name == "none") return ScoreNormalization::kNone;
  if (name == "ratio") return ScoreNormalization::kRatio;
  if (name == "shift") return ScoreNormalization::kShift;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown score normalization '", name, "' (expected none, ratio or shift)"));
}

std::string ScoreNormalizationName(ScoreNormalization normalization) {
  switch (normalization) {
    case ScoreNormalization::kNone: return "none";
    case ScoreNormalization::kRatio: return "ratio";
    case ScoreNormalization::kShift: return "shift";
  }
  return "unknown";
}

double FuseReferenceScores(absl::Span<const double> scores, ReferenceFusion fusion, int top_k) {
  if (scores.empty()) return 0;
  switch (fusion) {
    case ReferenceFusion::kMax:
      return *std::max_element(scores.begin(), scores.end());
    case ReferenceFusion::kMean:
      break;
    case ReferenceFusion::kTopKMean: {
      const size_t k = static_cast<size_t>(std::max(1, top_k));
      if (k >= scores.size()) break;
      std::vector<double> sorted(scores.begin(), scores.end());
      std::partial_sort(sorted.begin(), sorted.begin() + k, sorted.end(), std::greater<double>());
      return std::accumulate(sorted.begin(), sorted.begin() + k, 0.0) / static_cast<double>(k);
    }
  }
  return std::accumulate(scores.begin(), scores.end(), 0.0) / static_cast<double>(scores.size());
}

double MeanMutualScore(absl::Span<const double> mutual_scores) {
  if (mutual_scores.empty()) return 0;
  return std::accumulate(mutual_scores.begin(), mutual_scores.end(), 0.0) /
         static_cast<double>(mutual_scores.size());
}

namespace {

// Keeps the ratio finite for references that are (nearly) identical to each other.
constexpr double kMinRatioScale = 1e-9;

}  // namespace

double NormalizeScore(double fused, absl::Span<const double> mutual_scores,
                      ScoreNormalization normalization) {
  if (mutual_scores.empty()) return fused;
  const double m = MeanMutualScore(mutual_scores);
  switch (normalization) {
    case ScoreNormalization::kNone: return fused;
    case ScoreNormalization::kRatio: return fused / std::max(kMinRatioScale, std::abs(m));
    case ScoreNormalization::kShift: return fused - m;
  }
  return fused;
}

double SubjectThreshold(absl::Span<const double> mutual_scores, double normalized_threshold,
                        ScoreNormalization normalization) {
  if (mutual_scores.empty()) return normalized_threshold;
  const double m = MeanMutualScore(mutual_scores);
  switch (normalization) {
    case ScoreNormalization::kNone: return normalized_threshold;
    case ScoreNormalization::kRatio:
      return normalized_threshold * std::max(kMinRatioScale, std::abs(m));
    case ScoreNormalization::kShift: return normalized_threshold + m;
  }
  return normalized_threshold;
}

absl::StatusOr<double> ThresholdForFar(absl::Span<const double> impostor_scores,
                                       double target_far) {
  if (!(target_far >= 0 && target_far <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("target FAR ", target_far, " is outside [0, 1]"));
  }
  if (impostor_scores.empty()) return absl::InvalidArgumentError("no impostor scores");
  std::vector<double> sorted(impostor_scores.begin(), impostor_scores.end());
  for (double s : sorted) {
    if (!std::isfinite(s)) return absl::InvalidArgumentError("an impostor score is not finite");
  }
  std::sort(sorted.begin(), sorted.end(), std::greater<double>());
  const double n = static_cast<double>(sorted.size());
  // Accepting score >= sorted[k] accepts at least k + 1 impostors (more on ties); walk down the
  // distinct values while the accepted share stays within the target.
  double threshold = std::numeric_limits<double>::infinity();
  size_t k = 0;
  while (k < sorted.size()) {
    size_t end = k;
    while (end < sorted.size() && sorted[end] == sorted[k]) ++end;
    if (static_cast<double>(end) / n > target_far) break;
    threshold = sorted[k];
    k = end;
  }
  return threshold;
}

std::vector<double> MutualSimilarities(const SimilarityModel& model, const RowMatrix& references) {
  const int n = static_cast<int>(references.rows());
  std::vector<double> out;
  if (n < 2) return out;
  out.reserve(static_cast<size_t>(n) * (n - 1) / 2);
  std::vector<double> row(n);
  for (int i = 0; i + 1 < n; ++i) {
    model.Score(references.row(i).data(), references.row(i + 1).data(), n - i - 1, row.data());
    out.insert(out.end(), row.begin(), row.begin() + (n - i - 1));
  }
  return out;
}

absl::StatusOr<DtwFusionCalibration> ParseDtwFusionCalibration(absl::string_view text) {
  const auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("DTW fusion '", text, "' ", why,
                     " (expected W1:O1,WN:ON: weight and offset with one "
                     "reference, then with several)"));
  };
  const std::vector<absl::string_view> parts = absl::StrSplit(text, ',');
  if (parts.size() != 2) return bad("does not have two parts");
  double values[4];
  for (int k = 0; k < 2; ++k) {
    const std::vector<absl::string_view> pair = absl::StrSplit(parts[k], ':');
    if (pair.size() != 2 || !absl::SimpleAtod(pair[0], &values[2 * k]) ||
        !absl::SimpleAtod(pair[1], &values[2 * k + 1])) {
      return bad(absl::StrCat("has a malformed part '", parts[k], "'"));
    }
    if (!(values[2 * k] >= 0) || !std::isfinite(values[2 * k]) ||
        !std::isfinite(values[2 * k + 1])) {
      return bad("needs finite offsets and finite weights of at least 0");
    }
  }
  return DtwFusionCalibration{values[0], values[1], values[2], values[3]};
}

double FusedVerificationScore(double srn_mean, double srn_mutual, double dtw_ratio, int references,
                              const DtwFusionCalibration& calibration) {
  const bool several = references >= 2;
  const double weight = several ? calibration.weight_many : calibration.weight_one;
  const double fused = (several ? srn_mean - srn_mutual : srn_mean) - weight * dtw_ratio;
  const double offset = several ? calibration.offset_many : calibration.offset_one;
  return 1.0 / (1.0 + std::exp(-(fused - offset)));
}

double StatesVerificationScore(double states_ratio, double dtw_ratio, int references,
                               const DtwFusionCalibration& calibration) {
  const bool several = references >= 2;
  const double weight = several ? calibration.weight_many : calibration.weight_one;
  const double offset = several ? calibration.offset_many : calibration.offset_one;
  const double fused = -states_ratio - (weight > 0 ? weight * dtw_ratio : 0.0);
  return 1.0 / (1.0 + std::exp(-(fused - offset)));
}

std::string LearnedScoreName(LearnedScore score) {
  return score == LearnedScore::kStatesDtw ? "states-dtw" : "embedding";
}

absl::StatusOr<LearnedScore> ParseLearnedScore(absl::string_view name) {
  if (name == "embedding") return LearnedScore::kEmbedding;
  if (name == "states-dtw") return LearnedScore::kStatesDtw;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown learned score '", name, "' (expected embedding or states-dtw)"));
}

std::string FormatDtwFusionCalibration(const DtwFusionCalibration& c) {
  return absl::StrCat(c.weight_one, ":", c.offset_one, ",", c.weight_many, ":", c.offset_many);
}

std::string FormatVerificationCalibration(const VerificationCalibration& calibration) {
  std::string out;
  const bool states = calibration.learned == LearnedScore::kStatesDtw;
  if (states) {
    const DtwOptions& dtw = calibration.states_dtw;
    absl::StrAppend(&out, "learned=", LearnedScoreName(calibration.learned), " states_band=",
                    dtw.band_fraction, " states_cost=",
                    dtw.local_cost == DtwLocalCost::kEuclidean ? "euclidean" : "squared");
    if (calibration.states_spread.has_value()) {
      absl::StrAppend(&out, " states_spread=", FormatDtwSpreadModel(*calibration.states_spread));
    }
  }
  if (states || calibration.dtw_fusion.enabled()) {
    absl::StrAppend(&out, out.empty() ? "" : " ");
    absl::StrAppend(&out, "dtw_fusion=", FormatDtwFusionCalibration(calibration.dtw_fusion));
  }
  if (calibration.dtw_spread.has_value()) {
    absl::StrAppend(&out, out.empty() ? "" : " ", "dtw_spread=",
                    FormatDtwSpreadModel(*calibration.dtw_spread));
  }
  return out;
}

absl::StatusOr<VerificationCalibration> ParseVerificationCalibration(absl::string_view text) {
  VerificationCalibration calibration;
  for (absl::string_view part : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    if (absl::ConsumePrefix(&part, "learned=")) {
      SRN_ASSIGN_OR_RETURN(calibration.learned, ParseLearnedScore(part));
    } else if (absl::ConsumePrefix(&part, "states_band=")) {
      double band = 0;
      if (!absl::SimpleAtod(part, &band) || !(band > 0 && band <= 1)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "verification calibration: states_band must be a fraction in (0, 1], got '", part,
            "'"));
      }
      calibration.states_dtw.band_frames = -1;
      calibration.states_dtw.band_fraction = band;
    } else if (absl::ConsumePrefix(&part, "states_cost=")) {
      if (part != "euclidean" && part != "squared") {
        return absl::InvalidArgumentError(absl::StrCat(
            "verification calibration: states_cost must be euclidean or squared, got '", part,
            "'"));
      }
      calibration.states_dtw.local_cost =
          part == "euclidean" ? DtwLocalCost::kEuclidean : DtwLocalCost::kSquaredEuclidean;
    } else if (absl::ConsumePrefix(&part, "states_spread=")) {
      SRN_ASSIGN_OR_RETURN(calibration.states_spread, ParseDtwSpreadModel(part));
    } else if (absl::ConsumePrefix(&part, "dtw_fusion=")) {
      SRN_ASSIGN_OR_RETURN(calibration.dtw_fusion, ParseDtwFusionCalibration(part));
    } else if (absl::ConsumePrefix(&part, "dtw_spread=")) {
      SRN_ASSIGN_OR_RETURN(calibration.dtw_spread, ParseDtwSpreadModel(part));
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "verification calibration has an unknown part '", part,
          "' (expected learned=, states_band=, states_cost=, states_spread=, "
          "dtw_fusion=W1:O1,WN:ON or dtw_spread=c0,c1,c2,c3,log_min,log_max)"));
    }
  }
  return calibration;
}

absl::StatusOr<VerificationCalibration> ModelVerificationCalibration(const SimilarityModel& model) {
  absl::StatusOr<VerificationCalibration> c =
      ParseVerificationCalibration(model.metadata().verification);
  if (!c.ok()) {
    return absl::DataLossError(absl::StrCat("the model's recorded verification calibration is "
                                            "unreadable: ", c.status().message()));
  }
  return c;
}

VerificationScore ScoreVerification(const VerificationEvidence& evidence,
                                    const VerificationPolicy& policy) {
  VerificationScore out;
  const int references = static_cast<int>(evidence.similarities.size());
  if (policy.learned == LearnedScore::kStatesDtw) {
    out.srn = FuseReferenceScores(evidence.similarities, ReferenceFusion::kMean, 0);
    const double states_ratio =
        -out.srn / std::max(kMinRatioScale, std::abs(evidence.mutual_similarity));
    out.states_ratio = states_ratio;
    const DtwFusionCalibration& c = policy.dtw_fusion;
    double dtw_ratio = 0;
    if ((references >= 2 ? c.weight_many : c.weight_one) > 0 && !evidence.dtw_distances.empty()) {
      const double mean = FuseReferenceScores(evidence.dtw_distances, ReferenceFusion::kMean, 0);
      dtw_ratio = mean / std::max(kMinRatioScale, evidence.dtw_spread);
      out.dtw_ratio = dtw_ratio;
    }
    out.score = StatesVerificationScore(states_ratio, dtw_ratio, references, c);
    return out;
  }
  out.srn = FuseReferenceScores(evidence.similarities, policy.fusion, policy.top_k);
  out.score = out.srn;
  if (policy.dtw_fusion.enabled() && !evidence.dtw_distances.empty()) {
    const double mean = FuseReferenceScores(evidence.dtw_distances, ReferenceFusion::kMean, 0);
    out.dtw_ratio = mean / std::max(kMinRatioScale, evidence.dtw_spread);
    out.score = FusedVerificationScore(out.srn, evidence.mutual_similarity, *out.dtw_ratio,
                                       references, policy.dtw_fusion);
  }
  return out;
}

absl::StatusOr<double> DerivedThreshold(int references, double mutual_similarity, double shift,
                                        bool fused) {
  if (references < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a threshold derived from the references (threshold_shift) needs at least 2 references, "
        "not ", references, " (or set threshold instead)"));
  }
  return std::clamp((fused ? 0.5 : mutual_similarity) + shift, 0.0, 1.0);
}

}  // namespace srn
