#include "model/tools/cross_dataset_report.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/status_macros.h"
#include "model/data/dataset.h"
#include "model/data/dataset_loader.h"
#include "model/data/signature_features.h"
#include "model/nn/similarity_model.h"
#include "model/weights/weights_file.h"

namespace srn {
namespace {

// Signers per group: the random-forgery trials of a signer are the genuine signatures of the
// other signers of its group, as in svc2004-cv's folds of 10 (a full n x n matrix over every
// signer of a large set would cost far more and add little).
constexpr int kSignersPerGroup = 10;

// Whether the model's recorded training data names `dataset` as a whole word.
bool TrainedOn(const SimilarityModel& model, const std::string& dataset) {
  for (absl::string_view token : absl::StrSplit(model.metadata().training_data,
                                                absl::ByAnyChar(" ,;:()+"), absl::SkipEmpty())) {
    if (token == dataset) return true;
  }
  return false;
}

bool IsFrameTripletModel(const SimilarityModel& model) {
  const auto& h = model.metadata().hyperparameters;
  const auto it = h.find("objective");
  return it != h.end() && it->second == "frame-triplet";
}

std::string ResultLine(const std::string& dataset, const std::string& model,
                       const SignatureCvRow& row, const ErrorRates* rates) {
  std::string line = absl::StrFormat(
      "RESULT protocol=cross-dataset dataset=%s model=%s refs=%d eer_skilled=%.4f "
      "eer_random=%.4f",
      dataset, model, row.refs, row.eer_skilled.mean, row.eer_random.mean);
  if (rates != nullptr) {
    absl::StrAppendFormat(&line, " frr=%.4f far_skilled=%.4f far_random=%.4f", rates->frr,
                          rates->far_skilled, rates->far_random);
  }
  return line;
}

void LogRow(const std::string& name, const SignatureCvRow& row, std::ostream& log) {
  log << absl::StrFormat(
      "%-24s refs=%d  skilled EER %.2f%% (+-%.2f over draws)  random EER %.2f%% (+-%.2f)\n", name,
      row.refs, 100 * row.eer_skilled.mean, 100 * row.eer_skilled.stddev, 100 * row.eer_random.mean,
      100 * row.eer_random.stddev);
}

// The trials of every group for `refs`, as one set.
absl::StatusOr<SignatureTrials> PooledTrials(const std::vector<FoldMatrix>& groups, int refs,
                                             const SignatureCvOptions& options) {
  SRN_ASSIGN_OR_RETURN(const std::vector<SignatureTrials> t, FoldTrials(groups, refs, options));
  return ConcatenateTrials(t);
}

absl::StatusOr<SignatureCvRow> Summarize(const SignatureTrials& trials,
                                         const SignatureCvOptions& options) {
  return SummarizeSignatureCv({trials}, options.curve_points);
}

}  // namespace

absl::StatusOr<std::vector<std::string>> RunCrossDatasetReport(const CrossDatasetRequest& request,
                                                               std::ostream& log) {
  const std::vector<std::string> datasets = absl::StrSplit(request.dataset, ',', absl::SkipEmpty());
  for (const std::string& dataset : datasets) {
    if (!IsSignatureDataset(dataset)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--protocol=cross-dataset evaluates signature verification: --dataset must be a "
          "signature data set (svc2004, svc2004-task1, sigcomp2009-nfi, sigcomp2009-nisdcc), not '",
          dataset, "'"));
    }
  }
  if (datasets.empty()) return absl::InvalidArgumentError("no --dataset to evaluate");
  if (request.max_signers < 0) {
    return absl::InvalidArgumentError("max_signers must be 0 (all) or positive");
  }
  if (request.options.refs.empty()) {
    return absl::InvalidArgumentError("no reference counts to evaluate (e.g. refs 1 and 5)");
  }
  const int most_refs = *std::max_element(request.options.refs.begin(), request.options.refs.end());
  const int fewest_refs =
      *std::min_element(request.options.refs.begin(), request.options.refs.end());
  if (request.fit_calibration && (fewest_refs != 1 || most_refs < 2)) {
    return absl::InvalidArgumentError(
        "fitting a calibration needs trials with one reference and with several (refs 1 and, "
        "for example, 5): the served score has a weight and an offset for each");
  }
  const bool is_dtw = request.model == "dtw";
  const std::vector<std::string> model_files =
      is_dtw ? std::vector<std::string>(datasets.size(), "dtw")
             : std::vector<std::string>(absl::StrSplit(request.model, ',', absl::SkipEmpty()));
  if (model_files.size() != datasets.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("pair each data set with the model that never saw it: --dataset names ",
                     datasets.size(), " and --model ", model_files.size(),
                     " (for example --dataset=svc2004,svc2004-task1 "
                     "--model=without_task2.srnw,without_task1.srnw)"));
  }
  if (datasets.size() > 1 && !request.fit_calibration) {
    return absl::InvalidArgumentError(
        "several data sets are pooled only to fit one calibration over them "
        "(--fit_calibration); evaluate a model on one data set at a time");
  }
  std::vector<std::shared_ptr<const SimilarityModel>> models;
  if (!is_dtw) {
    for (size_t i = 0; i < datasets.size(); ++i) {
      SRN_ASSIGN_OR_RETURN(std::shared_ptr<const SimilarityModel> model, LoadModel(model_files[i]));
      if (TrainedOn(*model, datasets[i])) {
        return absl::FailedPreconditionError(absl::StrCat(
            model_files[i], " was trained on ", datasets[i], " (", model->metadata().training_data,
            "): the cross-dataset protocol evaluates on a data set the model never saw; pick "
            "another --dataset or a model trained without it"));
      }
      if (!models.empty() && IsFrameTripletModel(*model) != IsFrameTripletModel(*models[0])) {
        return absl::InvalidArgumentError(absl::StrCat(
            model_files[i], " and ", model_files[0],
            " score differently (one by its per-frame "
            "states, one by its pooled embedding): one calibration fits models of one kind"));
      }
      models.push_back(std::move(model));
    }
  }
  VerificationCalibration calibration;
  std::string name = request.name;
  if (!is_dtw) {
    if (request.calibration.has_value()) {
      calibration = *request.calibration;
    } else if (!request.fit_calibration) {
      SRN_ASSIGN_OR_RETURN(calibration, ModelVerificationCalibration(*models[0]));
    }
    if (request.fit_calibration) {
      // What is fitted here starts from the model's kind: states for frame-triplet models.
      calibration.learned =
          IsFrameTripletModel(*models[0]) ? LearnedScore::kStatesDtw : LearnedScore::kEmbedding;
      calibration.dtw_fusion = {};
      calibration.dtw_spread.reset();
      calibration.states_spread.reset();
    }
    if (name.empty()) {
      for (const std::string& file : model_files) {
        std::string base = file.substr(file.find_last_of('/') + 1);
        if (const size_t dot = base.rfind('.'); dot != std::string::npos && dot > 0) {
          base.resize(dot);
        }
        absl::StrAppend(&name, name.empty() ? "" : "+", base);
      }
    }
  } else if (name.empty()) {
    name = "dtw";
  }
  const bool states = calibration.learned == LearnedScore::kStatesDtw;
  const std::string dataset_label = absl::StrJoin(datasets, "+");

  // Each data set's groups of signers, scored by the DTW verifier (its own system, and the DTW
  // half of a fused score) and by its model; pooled, the groups of every data set are one set of
  // trials.
  std::vector<FoldMatrix> dtw;
  std::vector<FoldMatrix> learned;
  SignatureCvOptions options = request.options;
  options.fusion = ReferenceFusion::kMean;
  for (size_t i = 0; i < datasets.size(); ++i) {
    SRN_ASSIGN_OR_RETURN(Dataset data, LoadNamedDataset(datasets[i], request.data_dir));
    if (request.drop_pressure) {
      for (Example& e : data.examples) SRN_RETURN_IF_ERROR(DropPressure(&e.series));
    }
    if (request.max_signers > 0 && request.max_signers < data.num_labels()) {
      data = data.Filter([&](const Example& e) { return e.label < request.max_signers; });
      data.label_names.resize(request.max_signers);
    }
    // At least two groups: each group's spread model (with fit_calibration) is fitted on the
    // others.
    options.folds = std::max(2, (data.num_labels() + kSignersPerGroup - 1) / kSignersPerGroup);
    log << absl::StrFormat(
        "cross-dataset: %s%s, %d signers in %d groups, %d examples, %d draws of references\n",
        datasets[i], request.drop_pressure ? " (pressure dropped)" : "", data.num_labels(),
        options.folds, static_cast<int>(data.examples.size()), options.draws);
    SRN_ASSIGN_OR_RETURN(std::vector<FoldMatrix> d,
                         ScoreSignatureFolds(data, DtwFoldScorer(request.dtw), options));
    std::move(d.begin(), d.end(), std::back_inserter(dtw));
    if (is_dtw) continue;
    const std::shared_ptr<const SimilarityModel> model = models[i];
    const auto load = [model](int) -> absl::StatusOr<std::shared_ptr<const SimilarityModel>> {
      return model;
    };
    SRN_ASSIGN_OR_RETURN(
        std::vector<FoldMatrix> l,
        ScoreSignatureFolds(
            data,
            SrnFoldScorer(load, states ? SrnScore::kStatesDtw : SrnScore::kProbability,
                          calibration.states_dtw, false),
            options));
    std::move(l.begin(), l.end(), std::back_inserter(learned));
  }

  // One-reference spreads: fitted here, each group's from the other groups (the shipped model
  // from all), or the calibration's.
  const auto spreads = [&](std::vector<FoldMatrix>* matrices,
                           std::optional<DtwSpreadModel>* model) -> absl::Status {
    if (request.fit_calibration) {
      DtwSpreadModel all;
      SRN_RETURN_IF_ERROR(PredictFoldSpreads(matrices, &all).status());
      *model = all;
      return absl::OkStatus();
    }
    for (FoldMatrix& m : *matrices) {
      m.single_reference_spread.clear();
      if (model->has_value()) SRN_RETURN_IF_ERROR(SetSingleReferenceSpreads(**model, &m));
    }
    return absl::OkStatus();
  };
  SRN_RETURN_IF_ERROR(spreads(&dtw, &calibration.dtw_spread));
  if (states) SRN_RETURN_IF_ERROR(spreads(&learned, &calibration.states_spread));

  std::vector<std::string> lines;
  SignatureCvOptions dtw_options = options;
  dtw_options.normalization = ScoreNormalization::kRatio;
  SignatureCvOptions learned_options = options;
  learned_options.normalization = states ? ScoreNormalization::kRatio : ScoreNormalization::kShift;
  // With fit_calibration: each reference count's trials of both systems, to fit the fusion.
  for (int refs : options.refs) {
    SRN_ASSIGN_OR_RETURN(const SignatureTrials dtw_trials, PooledTrials(dtw, refs, dtw_options));
    SRN_ASSIGN_OR_RETURN(const SignatureCvRow dtw_row, Summarize(dtw_trials, options));
    LogRow("dtw", dtw_row, log);
    lines.push_back(ResultLine(dataset_label, "dtw", dtw_row, nullptr));
    if (is_dtw) continue;

    SRN_ASSIGN_OR_RETURN(const SignatureTrials alone, PooledTrials(learned, refs, learned_options));
    SRN_ASSIGN_OR_RETURN(const SignatureCvRow alone_row, Summarize(alone, options));
    const std::string alone_name = absl::StrCat(name, "-alone");
    LogRow(alone_name, alone_row, log);
    lines.push_back(ResultLine(dataset_label, alone_name, alone_row, nullptr));

    if (request.fit_calibration && (refs == 1 || refs == most_refs)) {
      // f = alone + w * dtw (both already normalized, as the served score forms them), the
      // weight with the lowest skilled EER here, and the offset at its equal-error point.
      std::vector<double> chosen;
      SRN_ASSIGN_OR_RETURN(
          const std::vector<SignatureTrials> fused,
          FuseSystems({alone}, {dtw_trials}, request.fuse_dtw_weights, &chosen, nullptr));
      SRN_ASSIGN_OR_RETURN(const double offset, EqualErrorThreshold(fused));
      DtwFusionCalibration& c = calibration.dtw_fusion;
      (refs == 1 ? c.weight_one : c.weight_many) = chosen[0];
      (refs == 1 ? c.offset_one : c.offset_many) = offset;
      log << absl::StrFormat("  calibration, %d reference(s): DTW weight %g, offset %.6g\n", refs,
                             chosen[0], offset);
    }
  }
  if (is_dtw) return lines;
  if (request.fit_calibration) {
    log << "to deploy: --verification=\"" << FormatVerificationCalibration(calibration)
        << "\" (fitted on " << dataset_label << ")\n";
  }

  // The served score, as srn-server's Verify computes it.
  VerificationPolicy policy;
  policy.learned = calibration.learned;
  policy.fusion = ReferenceFusion::kMean;
  policy.dtw_fusion = calibration.dtw_fusion;
  const bool uses_dtw = states || calibration.dtw_fusion.enabled();
  std::ofstream csv;
  if (!request.served_trials_csv.empty()) {
    csv.open(request.served_trials_csv);
    if (!csv) {
      return absl::PermissionDeniedError(
          absl::StrCat("cannot write served trials to ", request.served_trials_csv));
    }
    csv << kServedTrialsCsvHeader;
  }
  log << "served score: " << LearnedScoreName(calibration.learned) << ", calibration \""
      << FormatVerificationCalibration(calibration) << "\"\n";
  for (int refs : options.refs) {
    std::vector<SignatureTrials> groups;
    for (size_t g = 0; g < learned.size(); ++g) {
      std::vector<std::vector<int>> references;
      SRN_ASSIGN_OR_RETURN(SignatureTrials t,
                           ServedTrials(learned[g], uses_dtw ? &dtw[g] : nullptr, refs, options,
                                        policy, dtw[g].single_reference_spread, &references));
      if (csv.is_open()) {
        AppendServedTrialsCsv(static_cast<int>(g), learned[g].test, t, references, csv);
      }
      groups.push_back(std::move(t));
    }
    const SignatureTrials served = ConcatenateTrials(groups);
    SRN_ASSIGN_OR_RETURN(const SignatureCvRow row, Summarize(served, options));
    LogRow(name, row, log);
    const ErrorRates at_default = ErrorRatesAt(served, 0.5);
    lines.push_back(ResultLine(dataset_label, name, row, &at_default));
    std::vector<double> thresholds = {0.5};
    thresholds.insert(thresholds.end(), request.thresholds.begin(), request.thresholds.end());
    for (double threshold : thresholds) {
      const ErrorRates r = ErrorRatesAt(served, threshold);
      log << absl::StrFormat("  at threshold %.4f: FRR %.4f, FAR skilled %.4f, FAR random %.4f\n",
                             threshold, r.frr, r.far_skilled, r.far_random);
    }
    if (request.fit_calibration) {
      std::vector<double> skilled_scores;
      for (size_t i = 0; i < served.score.size(); ++i) {
        if (served.label[i] == 0 && served.skilled[i]) skilled_scores.push_back(served.score[i]);
      }
      for (double far : request.target_fars) {
        SRN_ASSIGN_OR_RETURN(const double threshold, ThresholdForFar(skilled_scores, far));
        const ErrorRates r = ErrorRatesAt(served, threshold);
        log << absl::StrFormat(
            "  to deploy, %d reference(s): threshold %.4f for skilled FAR %.3f (here FRR %.4f, "
            "FAR skilled %.4f, random %.4f)\n",
            refs, threshold, far, r.frr, r.far_skilled, r.far_random);
      }
    }
  }
  if (csv.is_open()) {
    csv.close();
    if (!csv) return absl::DataLossError(absl::StrCat("error writing ", request.served_trials_csv));
  }
  return lines;
}

}  // namespace srn
