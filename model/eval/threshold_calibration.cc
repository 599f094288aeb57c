#include "model/eval/threshold_calibration.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "base/status_macros.h"
#include "model/metrics/metrics.h"
#include "model/nn/parallel.h"

namespace srn {
namespace {

// `k` distinct indices of [0, n) drawn by `rng` (a partial Fisher-Yates shuffle with the engine's
// raw output, so the draw is the same on every platform; k <= n).
std::vector<int> DrawDistinct(int n, int k, std::mt19937_64* rng) {
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  for (int i = 0; i < k; ++i) {
    const int j = i + static_cast<int>((*rng)() % static_cast<uint64_t>(n - i));
    std::swap(order[i], order[j]);
  }
  order.resize(k);
  return order;
}

std::string FarChoice(double target) { return absl::StrCat("far=", target); }

}  // namespace

absl::StatusOr<VerifyTrialScorer> VerifyTrialScorer::Create(const SimilarityModel& model,
                                                             const Dataset& data, int threads) {
  if (data.examples.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(data.name, " has no examples to calibrate on"));
  }
  if (model.preprocessor().raw_dims != data.dims()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "the model takes %d features per frame but %s has %d: calibrate on data of the kind it "
        "was trained on",
        model.preprocessor().raw_dims, data.name, data.dims()));
  }
  SRN_ASSIGN_OR_RETURN(
      RowMatrix embeddings,
      model.Embed(data.SeriesPointers(), threads > 0 ? threads : DefaultThreads()));
  return VerifyTrialScorer(model, data, std::move(embeddings));
}

absl::StatusOr<VerifyTrials> VerifyTrialScorer::Score(const VerifyTrialOptions& options,
                                                      const std::vector<int>* classes) const {
  if (options.references < 1 || options.draws < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "calibration needs at least 1 reference and 1 draw, got ", options.references, " and ",
        options.draws));
  }
  const Dataset& data = *data_;
  std::vector<bool> included(data.num_labels(), classes == nullptr);
  if (classes != nullptr) {
    for (int c : *classes) included[c] = true;
  }
  // The examples taking part, the genuine ones of each class, the classes that can be subjects.
  std::vector<int> queries;
  std::vector<std::vector<int>> genuine(data.num_labels());
  for (int i = 0; i < static_cast<int>(data.examples.size()); ++i) {
    const Example& e = data.examples[i];
    if (!included[e.label]) continue;
    queries.push_back(i);
    if (!e.forgery) genuine[e.label].push_back(i);
  }
  std::vector<int> subjects;
  for (int c = 0; c < data.num_labels(); ++c) {
    if (static_cast<int>(genuine[c].size()) > options.references) subjects.push_back(c);
  }
  if (subjects.size() < 2) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s has %d classes with more than %d genuine examples; calibration needs at least 2 "
        "(add classes, or lower --calibration_refs)",
        data.name, subjects.size(), options.references));
  }
  const int threads = options.threads > 0 ? options.threads : DefaultThreads();
  const int dims = model_->embedding_dims();

  VerifyTrials trials;
  trials.subjects = static_cast<int>(subjects.size());
  std::mt19937_64 rng(options.seed);
  for (int draw = 0; draw < options.draws; ++draw) {
    // The references of every subject, drawn in order before any scoring (deterministic).
    std::vector<std::vector<int>> refs(subjects.size());
    for (size_t s = 0; s < subjects.size(); ++s) {
      const std::vector<int>& pool = genuine[subjects[s]];
      for (int k : DrawDistinct(static_cast<int>(pool.size()), options.references, &rng)) {
        refs[s].push_back(pool[k]);
      }
    }
    // Each subject's trials in their own vectors, appended in subject order afterwards.
    std::vector<std::vector<double>> scores(subjects.size());
    std::vector<std::vector<int>> labels(subjects.size());
    ParallelFor(static_cast<int>(subjects.size()), threads, [&](int begin, int end, int) {
      RowMatrix ref_rows(options.references, dims);
      std::vector<double> sims(options.references);
      for (int s = begin; s < end; ++s) {
        for (int r = 0; r < options.references; ++r) {
          ref_rows.row(r) = embeddings_.row(refs[s][r]);
        }
        for (int q : queries) {
          if (std::find(refs[s].begin(), refs[s].end(), q) != refs[s].end()) continue;
          model_->Score(embeddings_.row(q).data(), ref_rows.data(), options.references,
                        sims.data());
          const Example& e = data.examples[q];
          scores[s].push_back(std::accumulate(sims.begin(), sims.end(), 0.0) /
                              options.references);
          labels[s].push_back(e.label == subjects[s] && !e.forgery ? 1 : 0);
        }
      }
    });
    for (size_t s = 0; s < subjects.size(); ++s) {
      trials.scores.insert(trials.scores.end(), scores[s].begin(), scores[s].end());
      trials.labels.insert(trials.labels.end(), labels[s].begin(), labels[s].end());
    }
  }
  for (int label : trials.labels) ++(label == 1 ? trials.genuine : trials.impostor);
  return trials;
}

absl::StatusOr<VerifyTrials> ScoreVerifyTrials(const SimilarityModel& model, const Dataset& data,
                                               const VerifyTrialOptions& options) {
  SRN_ASSIGN_OR_RETURN(const VerifyTrialScorer scorer,
                       VerifyTrialScorer::Create(model, data, options.threads));
  return scorer.Score(options);
}

absl::StatusOr<ThresholdCalibration> CalibrateThresholds(const VerifyTrials& trials,
                                                         absl::Span<const double> target_fars,
                                                         const std::string& default_choice) {
  if (target_fars.empty()) {
    return absl::InvalidArgumentError("give at least one target FAR (e.g. --target_far=0.01)");
  }
  std::vector<double> targets(target_fars.begin(), target_fars.end());
  for (double t : targets) {
    if (!(t > 0 && t < 1)) {
      return absl::InvalidArgumentError(
          absl::StrCat("a target FAR is a rate in (0, 1), e.g. 0.01 for 1%; got ", t));
    }
    if (static_cast<double>(trials.impostor) * t < 1) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "a FAR of %g cannot be measured with %d impostor trials (at least %.0f are needed, "
          "and ten times that for a stable threshold): calibrate on more classes or draws, or "
          "ask for a larger target",
          t, trials.impostor, std::ceil(1 / t)));
    }
  }
  std::string choice = default_choice.empty() ? FarChoice(targets.front()) : default_choice;
  if (choice != "eer") {
    absl::string_view rest = choice;
    double chosen = 0;
    if (!absl::ConsumePrefix(&rest, "far=") || !absl::SimpleAtod(rest, &chosen) ||
        std::find(targets.begin(), targets.end(), chosen) == targets.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the default threshold '", default_choice,
          "' must be eer or far=<one of the target FARs>, e.g. far=", targets.front()));
    }
    choice = FarChoice(chosen);
  }
  std::sort(targets.begin(), targets.end(), std::greater<double>());
  targets.erase(std::unique(targets.begin(), targets.end()), targets.end());

  ThresholdCalibration out;
  SRN_ASSIGN_OR_RETURN(const EerResult eer, Eer(trials.scores, trials.labels));
  out.eer = eer.eer;
  out.eer_threshold = std::clamp(eer.threshold, 0.0, 1.0);
  for (double t : targets) {
    SRN_ASSIGN_OR_RETURN(const OperatingPoint p, AtFar(trials.scores, trials.labels, t));
    if (!std::isfinite(p.threshold)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "no threshold keeps the FAR at or below %g on these trials (the model scores an "
          "impostor like the best genuine trials): ask for a larger target FAR", t));
    }
    out.points.push_back({t, p.threshold, p.far, p.frr});
    if (choice == FarChoice(t)) out.default_threshold = p.threshold;
  }
  if (choice == "eer") out.default_threshold = out.eer_threshold;
  out.default_choice = choice;
  out.genuine_trials = trials.genuine;
  out.impostor_trials = trials.impostor;
  return out;
}

absl::StatusOr<ThresholdCalibration> MeasureAtThresholds(const ThresholdCalibration& calibration,
                                                         const VerifyTrials& trials) {
  ThresholdCalibration out = calibration;
  for (ThresholdCalibration::Point& p : out.points) {
    SRN_ASSIGN_OR_RETURN(const OperatingPoint at,
                         AtThreshold(trials.scores, trials.labels, p.threshold));
    p.far = at.far;
    p.frr = at.frr;
  }
  SRN_ASSIGN_OR_RETURN(const EerResult eer, Eer(trials.scores, trials.labels));
  out.eer = eer.eer;
  out.eer_threshold = std::clamp(eer.threshold, 0.0, 1.0);
  out.genuine_trials = trials.genuine;
  out.impostor_trials = trials.impostor;
  return out;
}

std::vector<std::string> DescribeThresholdCalibration(const ThresholdCalibration& c) {
  std::vector<std::string> lines;
  for (const ThresholdCalibration::Point& p : c.points) {
    lines.push_back(absl::StrFormat("threshold %.6f for FAR <= %g: FAR %.4f, FRR %.4f",
                                    p.threshold, p.target_far, p.far, p.frr));
  }
  lines.push_back(absl::StrFormat("equal-error point: threshold %.6f, EER %.4f", c.eer_threshold,
                                  c.eer));
  lines.push_back(absl::StrFormat("default threshold (%s): %.6f", c.default_choice,
                                  c.default_threshold));
  lines.push_back(absl::StrFormat(
      "measured on %s: %d genuine and %d impostor Verify trials, %d reference%s each",
      c.measured_on.empty() ? "unrecorded data" : c.measured_on, c.genuine_trials,
      c.impostor_trials, c.references, c.references == 1 ? "" : "s"));
  return lines;
}

}  // namespace srn
