#include "model/tools/signature_cv_report.h"

#include <fstream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "model/data/dataset.h"
#include "model/data/dataset_loader.h"
#include "model/eval/protocols.h"
#include "model/nn/similarity_model.h"
#include "model/weights/weights_file.h"

namespace srn {
namespace {

void LogRow(const std::string& name, const SignatureCvRow& row, std::ostream& log) {
  log << absl::StrFormat(
      "%-28s refs=%d  skilled EER %.2f%% (+-%.2f draws x folds, +-%.2f folds)  random EER %.2f%% "
      "(+-%.2f)  per-signer a-posteriori: skilled %.2f%% random %.2f%%\n",
      name, row.refs, 100 * row.eer_skilled.mean, 100 * row.eer_skilled.stddev,
      100 * row.fold_stddev_skilled, 100 * row.eer_random.mean, 100 * row.eer_random.stddev,
      100 * row.eer_skilled_per_signer.mean, 100 * row.eer_random_per_signer.mean);
}

// See SignatureCvRequest::served_trials_csv. Logs each row's FRR and FARs at 0.5, the default
// threshold of a calibrated (DTW-fused) score.
absl::Status WriteServedTrials(const SignatureCvRequest& request,
                               const VerificationCalibration& calibration,
                               const std::vector<FoldMatrix>& srn_folds,
                               const std::vector<FoldMatrix>* dtw_folds, std::ostream& log) {
  std::ofstream out(request.served_trials_csv);
  if (!out) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot write served trials to ", request.served_trials_csv));
  }
  out << kServedTrialsCsvHeader;
  VerificationPolicy policy;
  policy.fusion = request.options.fusion;
  policy.top_k = request.options.top_k;
  policy.dtw_fusion = calibration.dtw_fusion;
  for (int refs : request.options.refs) {
    std::vector<SignatureTrials> folds;
    for (size_t f = 0; f < srn_folds.size(); ++f) {
      const Dataset& test = srn_folds[f].test;
      std::vector<double> spreads;
      if (refs == 1 && dtw_folds != nullptr && calibration.dtw_spread.has_value()) {
        for (const Example& e : test.examples) {
          SRN_ASSIGN_OR_RETURN(const double spread,
                               PredictDtwSpread(*calibration.dtw_spread, e.series));
          spreads.push_back(spread);
        }
      }
      std::vector<std::vector<int>> references;
      SRN_ASSIGN_OR_RETURN(
          SignatureTrials t,
          ServedTrials(srn_folds[f], dtw_folds != nullptr ? &(*dtw_folds)[f] : nullptr, refs,
                       request.options, policy, spreads, &references));
      AppendServedTrialsCsv(static_cast<int>(f), test, t, references, out);
      folds.push_back(std::move(t));
    }
    const ErrorRates r = ErrorRatesAt(ConcatenateTrials(folds), 0.5);
    log << absl::StrFormat(
        "served trials, %d reference(s), at threshold 0.5: FRR %.4f, FAR skilled %.4f, FAR "
        "random %.4f (%d genuine, %d skilled, %d random trials)\n",
        refs, r.frr, r.far_skilled, r.far_random, r.genuine, r.skilled, r.random);
  }
  out.close();
  if (!out) return absl::DataLossError(absl::StrCat("error writing ", request.served_trials_csv));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<std::string>> RunSignatureCvReport(const SignatureCvRequest& request,
                                                              std::ostream& log) {
  SRN_ASSIGN_OR_RETURN(const Dataset data, LoadNamedDataset("svc2004", request.data_dir));
  const bool is_dtw = request.model == "dtw";
  std::string name = request.name;
  std::vector<FoldMatrix> dtw_folds;
  std::vector<FoldMatrix> srn_folds;
  if (is_dtw && !request.served_trials_csv.empty()) {
    return absl::InvalidArgumentError("served trials need a model, not dtw");
  }
  // The calibration of served trials: the request's, or fold 0's model's (read first, since it
  // decides whether the DTW matrices are needed).
  std::optional<VerificationCalibration> calibration = request.calibration;
  if (!request.served_trials_csv.empty() && !calibration.has_value()) {
    std::string path = request.model;
    if (const size_t at = path.find("{fold}"); at != std::string::npos) path.replace(at, 6, "0");
    SRN_ASSIGN_OR_RETURN(std::shared_ptr<const SimilarityModel> model, LoadModel(path));
    SRN_ASSIGN_OR_RETURN(calibration, ModelVerificationCalibration(*model));
  }
  const bool served_fuse = calibration.has_value() && calibration->dtw_fusion.enabled();
  if (is_dtw || !request.fuse_dtw_weights.empty() || served_fuse) {
    SRN_ASSIGN_OR_RETURN(dtw_folds,
                         ScoreSignatureFolds(data, DtwFoldScorer(request.dtw), request.options));
    if (request.dtw_spread) {
      DtwSpreadModel all;
      SRN_ASSIGN_OR_RETURN(const std::vector<DtwSpreadModel> fold_spreads,
                           PredictFoldSpreads(&dtw_folds, &all));
      for (size_t f = 0; f < fold_spreads.size(); ++f) {
        log << "fold " << f << ": single-reference DTW spread model "
            << FormatDtwSpreadModel(fold_spreads[f]) << " (fitted on the other signers)\n";
      }
      log << "to deploy: --dtw_spread=" << FormatDtwSpreadModel(all) << " (fitted on all "
          << data.num_labels() << " signers)\n";
    }
  }
  if (!is_dtw) {
    std::string family;
    const auto load = [&](int fold) -> absl::StatusOr<std::shared_ptr<const SimilarityModel>> {
      std::string path = request.model;
      if (const size_t at = path.find("{fold}"); at != std::string::npos) {
        path.replace(at, 6, absl::StrCat(fold));
      }
      SRN_ASSIGN_OR_RETURN(std::shared_ptr<const SimilarityModel> model, LoadModel(path));
      family = model->architecture().FamilyName();
      log << "fold " << fold << ": " << path << " (" << model->metadata().training_data << ")\n";
      return model;
    };
    SRN_ASSIGN_OR_RETURN(
        srn_folds,
        ScoreSignatureFolds(data, SrnFoldScorer(load, request.srn_score, request.states_dtw,
                                          request.states_cost_from_model),
                            request.options));
    // DTW over the states is a distance like the DTW verifier's: with ratio normalization it
    // gets the same one-reference treatment, a spread model fitted on its own distances.
    if (request.srn_score == SrnScore::kStatesDtw && request.dtw_spread &&
        request.options.normalization == ScoreNormalization::kRatio) {
      SRN_ASSIGN_OR_RETURN(const std::vector<DtwSpreadModel> fold_spreads,
                           PredictFoldSpreads(&srn_folds, nullptr));
      for (size_t f = 0; f < fold_spreads.size(); ++f) {
        log << "fold " << f << ": single-reference spread model of the states' DTW "
            << FormatDtwSpreadModel(fold_spreads[f]) << " (fitted on the other signers)\n";
      }
    }
    if (name.empty()) name = family;
  } else if (name.empty()) {
    name = "dtw";
  }
  log << absl::StrFormat("svc2004-cv: %d folds, %d draws, fusion %s, normalization %s\n",
                         request.options.folds, request.options.draws,
                         ReferenceFusionName(request.options.fusion),
                         ScoreNormalizationName(request.options.normalization));
  std::vector<std::string> lines;
  std::vector<SignatureCvRow> rows;
  for (int refs : request.options.refs) {
    SRN_ASSIGN_OR_RETURN(const std::vector<SignatureTrials> trials,
                         FoldTrials(is_dtw ? dtw_folds : srn_folds, refs, request.options));
    SRN_ASSIGN_OR_RETURN(SignatureCvRow row,
                         SummarizeSignatureCv(trials, request.options.curve_points));
    LogRow(name, row, log);
    for (double far : request.calibrate_fars) {
      SRN_ASSIGN_OR_RETURN(const FarCalibration c, CalibrateFar(trials, far));
      log << absl::StrFormat(
          "  target FAR %.3f (threshold from the other folds): FAR skilled %.4f random %.4f, "
          "FRR %.4f; threshold on all folds %.6g\n",
          far, c.far_skilled, c.far_random, c.frr, c.threshold);
    }
    lines.push_back(SignatureResultLine(name, row));
    row.model = name;
    rows.push_back(std::move(row));
    if (!is_dtw && !request.fuse_dtw_weights.empty()) {
      SignatureCvOptions dtw_options = request.options;
      dtw_options.normalization = request.dtw_normalization;
      SRN_ASSIGN_OR_RETURN(const std::vector<SignatureTrials> dtw_trials,
                           FoldTrials(dtw_folds, refs, dtw_options));
      std::vector<double> chosen;
      double ship_weight = 0;
      SRN_ASSIGN_OR_RETURN(
          const std::vector<SignatureTrials> fused,
          FuseSystems(trials, dtw_trials, request.fuse_dtw_weights, &chosen, &ship_weight));
      SRN_ASSIGN_OR_RETURN(SignatureCvRow fused_row,
                           SummarizeSignatureCv(fused, request.options.curve_points));
      std::string weights;
      for (double w : chosen) absl::StrAppend(&weights, weights.empty() ? "" : ",", w);
      LogRow(absl::StrCat(name, "+dtw"), fused_row, log);
      log << "  fusion weights per fold (chosen on the other folds): " << weights << "\n";
      // A deployment uses one weight (the best on all folds) and thresholds for it: a fold's
      // threshold is calibrated on the other folds at that fixed weight, so that the scores of
      // all folds are on one scale (per-fold weights would not be).
      std::vector<SignatureTrials> shipped;
      for (size_t f = 0; f < trials.size(); ++f) {
        SRN_ASSIGN_OR_RETURN(std::vector<SignatureTrials> t,
                             FuseSystems({trials[f]}, {dtw_trials[f]}, {ship_weight}));
        shipped.push_back(std::move(t[0]));
      }
      SRN_ASSIGN_OR_RETURN(const double eer_threshold, EqualErrorThreshold(shipped));
      // The DET curves pool all folds, so they too need one scale: they are drawn at that weight.
      {
        SRN_ASSIGN_OR_RETURN(SignatureCvRow pooled,
                             SummarizeSignatureCv(shipped, request.options.curve_points));
        fused_row.det_skilled = std::move(pooled.det_skilled);
        fused_row.det_random = std::move(pooled.det_random);
      }
      log << absl::StrFormat(
          "  to deploy: weight %g (best on all folds), equal-error threshold %.6g\n", ship_weight,
          eer_threshold);
      for (double far : request.calibrate_fars) {
        SRN_ASSIGN_OR_RETURN(const FarCalibration c, CalibrateFar(shipped, far));
        log << absl::StrFormat(
            "  target FAR %.3f at weight %g (threshold from the other folds): FAR skilled %.4f "
            "random %.4f, FRR %.4f; threshold on all folds %.6g\n",
            far, ship_weight, c.far_skilled, c.far_random, c.frr, c.threshold);
      }
      lines.push_back(SignatureResultLine(absl::StrCat(name, "+dtw"), fused_row));
      fused_row.model = absl::StrCat(name, "+dtw");
      rows.push_back(std::move(fused_row));
    }
  }
  if (!request.det_csv.empty()) SRN_RETURN_IF_ERROR(WriteDetCsv(rows, request.det_csv));
  if (!request.served_trials_csv.empty()) {
    SRN_RETURN_IF_ERROR(WriteServedTrials(request, *calibration, srn_folds,
                                          served_fuse ? &dtw_folds : nullptr, log));
  }
  return lines;
}

}  // namespace srn
