// srn-eval: evaluates a weights file, or the DTW baseline, on one of the paper's protocols and
// ends with a machine-readable RESULT line.
//
//   srn-eval --model=voice.srnw --dataset=arabic-voice --protocol=out-of-domain
//   srn-eval --model=dtw --dataset=arabic-voice --protocol=out-of-domain --dtw_band=0.1
//   srn-eval --model=fisher-kernel --dataset=arabic-voice --protocol=out-of-domain  (or
//   fisher-vector)
//   srn-eval --model=default.srnw --dataset=sigcomp2009-nfi --protocol=cross-dataset --draws=20
//   srn-eval --model=my.srnw --dataset=new_classes.csv --protocol=test  (every class tests)

#include <cmath>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "base/flags_help.h"
#include "base/status_macros.h"
#include "model/baselines/fisher.h"
#include "model/data/dataset.h"
#include "model/data/dataset_loader.h"
#include "model/eval/dtw.h"
#include "model/eval/protocols.h"
#include "model/nn/parallel.h"
#include "model/signature/signature_protocol.h"
#include "model/signature/verification.h"
#include "model/tools/calibration_report.h"
#include "model/tools/cross_dataset_report.h"
#include "model/tools/evaluation_plot.h"
#include "model/tools/signature_cv_report.h"
#include "model/tools/tool_common.h"
#include "model/train/trainer.h"
#include "model/weights/weights_file.h"

ABSL_FLAG(
    std::string, model, "",
    "a weights file written by srn-train, or dtw, fisher-kernel or fisher-vector (baselines)");
ABSL_FLAG(
    std::string, dataset, "",
    "arabic-digit, arabic-voice, svc2004, svc2004-task1, sigcomp2009-nfi, sigcomp2009-nisdcc, "
    "or the path of a CSV manifest (docs/DATA_FORMATS.md)");
ABSL_FLAG(std::string, data_dir, "",
          "folder holding the public data sets (default: $SRN_DATA_DIR or ../shared/data)");
ABSL_FLAG(std::string, protocol, "out-of-domain",
          "within-domain, out-of-domain or one-shot (the paper's; give the --test_classes or "
          "--split that srn-train had), test (every class of --dataset is a test class, e.g. a "
          "manifest of classes the model never saw: AUC over all pairs, one-shot over all "
          "classes), svc2004-cv (signer-disjoint folds of SVC2004) or cross-dataset (a signature "
          "data set never trained on)");
ABSL_FLAG(int64_t, seed, -1,
          "split and draw seed (default: the weights file's training seed, else 1; a CSV "
          "manifest's seeded class split needs srn-train's seed)");
ABSL_FLAG(int, draws, 10, "one-shot draws (one random reference per class each)");
ABSL_FLAG(int64_t, max_pairs, 0, "score a uniform sample of about this many trial pairs (0: all)");
// NaN stands for "the protocol's default" (see BandOr).
ABSL_FLAG(double, dtw_band, std::numeric_limits<double>::quiet_NaN(),
          "DTW Sakoe-Chiba band as a fraction of the longer series, <0 for none (default 0.1; 0.3 "
          "for the signature verifier of --protocol=svc2004-cv)");
ABSL_FLAG(bool, center_series, false, "DTW only: centre each series on its own mean first");
ABSL_FLAG(int, threads, 0, "worker threads (0: all cores)");
ABSL_FLAG(std::string, embeddings_csv, "", "write the test embeddings here (weights files only)");
ABSL_FLAG(std::string, roc_csv, "",
          "write ROC/DET operating points (threshold,far,frr) here, thresholds in the units of the "
          "score: a weights file's similarity in [0, 1] as srn-server returns it, minus the DTW "
          "distance for dtw; and the picture next to it (--plot)");
ABSL_FLAG(std::string, plot, "",
          "write the ROC and DET curves and the score histograms here as SVG, the equal-error "
          "point and --calibrate's thresholds marked (default: --roc_csv's path ending .svg)");
ABSL_FLAG(std::string, hmm_states, "2,4,8,16,32",
          "fisher-kernel/-vector: HMM state counts to choose from on the validation split");
ABSL_FLAG(int, hmm_restarts, 3, "fisher-kernel/-vector: Baum-Welch restarts per state count");
ABSL_FLAG(int, hmm_iterations, 50, "fisher-kernel/-vector: Baum-Welch iterations at most");
ABSL_FLAG(int, fisher_pairs, 2000, "fisher-vector: labelled training pairs for the 1-NN");
ABSL_FLAG(bool, fisher_normalized, false,
          "fisher-kernel: cosine instead of the plain inner product");
ABSL_FLAG(bool, drop_forgeries, false,
          "leave skilled forgeries out of every split (SVC2004 'without forgeries'; RESULT dataset "
          "gets -noforg)");
ABSL_FLAG(std::string, dtw_matrix, "",
          "dtw: also write the test set's DTW distance matrix (CSV) here");
ABSL_FLAG(std::string, name, "", "model name in the RESULT line (default: the family, or dtw)");
// --protocol=svc2004-cv (signature verification; model/signature_protocol.h).
ABSL_FLAG(int, folds, 4, "svc2004-cv: signer-disjoint folds");
ABSL_FLAG(std::string, refs, "1,5", "svc2004-cv: reference counts to enroll");
ABSL_FLAG(std::string, fusion, "mean", "svc2004-cv: reference fusion: max, mean or topk");
ABSL_FLAG(int, top_k, 3, "svc2004-cv: k of --fusion=topk");
ABSL_FLAG(std::string, normalization, "",
          "svc2004-cv: none, ratio or shift (default: ratio for dtw, shift for a model)");
ABSL_FLAG(
    std::string, fuse_dtw, "",
    "svc2004-cv: also report model + w * dtw, w chosen per fold among these (e.g. 0,0.5,1,2); "
    "cross-dataset with --fit_calibration: the weights to choose among");
ABSL_FLAG(std::string, srn_score, "probability",
          "svc2004-cv: SRN pair score: probability (as served), logit, distance or states-dtw "
          "(DTW over the per-frame states, --dtw_band wide, default 0.1)");
ABSL_FLAG(std::string, dtw_features, "",
          "svc2004-cv: the DTW verifier's feature columns, e.g. 0,1,2,3,9, or all (default: "
          "0,1,2,3,5,6,9, see model/signature_dtw.h)");
ABSL_FLAG(std::string, dtw_normalize, "series",
          "svc2004-cv: the DTW verifier's normalization: series (each signature z-normalized on "
          "its own) or train (standardized with the training signers' statistics)");
ABSL_FLAG(std::string, dtw_cost, "euclidean",
          "svc2004-cv: the DTW verifier's cost between two frames: euclidean or squared (Euclidean "
          "distance)");
ABSL_FLAG(std::string, states_cost, "model",
          "svc2004-cv, --srn_score=states-dtw: the cost between two frames of states: model (the "
          "one the model was trained with; squared for models trained on pairs), squared or "
          "euclidean");
ABSL_FLAG(bool, dtw_spread, true,
          "svc2004-cv: with one reference, divide DTW distances by the spread predicted from the "
          "reference's shape (needs --dtw_normalize=series; with --srn_score=states-dtw and "
          "--normalization=ratio also the states' DTW distances, by a spread model of their own)");
ABSL_FLAG(std::string, det_csv, "",
          "svc2004-cv: write the DET curves (kind,refs,threshold,far,frr) here");
ABSL_FLAG(std::string, served_trials, "",
          "svc2004-cv and cross-dataset: write every trial as srn-server's Verify scores it here "
          "(CSV, see model/signature/signature_protocol.h), with the model's recorded calibration "
          "or --verification, and log FRR and FAR at the threshold 0.5");
ABSL_FLAG(std::string, verification, "",
          "a verification calibration \"dtw_fusion=W1:O1,WN:ON dtw_spread=c0,..,hi\" (the "
          "'to deploy' lines of --protocol=svc2004-cv --fuse_dtw): used by --served_trials, and "
          "recorded into a copy of --model by --stamp_out");
// --protocol=cross-dataset (model/tools/cross_dataset_report.h).
ABSL_FLAG(bool, fit_calibration, false,
          "cross-dataset: fit the model's verification calibration on --dataset (a data set the "
          "shipped model may train on, never the one it is judged on) and print it as 'to deploy: "
          "--verification=...', fusion weights from --fuse_dtw (default 0: the learned score "
          "alone); several data sets, each with the model that never saw it, are pooled into "
          "one fit: --dataset=svc2004,svc2004-task1 --model=without_task2.srnw,without_task1.srnw");
ABSL_FLAG(std::string, thresholds, "",
          "cross-dataset: also report FRR and FAR of the served score at these thresholds (e.g. "
          "the model card's for a target FAR)");
ABSL_FLAG(bool, drop_pressure, false,
          "cross-dataset: evaluate as if the tablet had no pressure channel (pressure features "
          "zeroed in every signature)");
ABSL_FLAG(int, signers, 0,
          "cross-dataset: evaluate only the data set's first N signers (0: all), a quick check");
// --calibrate (model/tools/calibration_report.h).
ABSL_FLAG(bool, calibrate, false,
          "measure acceptance thresholds on the test classes (--protocol=test or out-of-domain: "
          "classes the model never trained on) and record them in the weights file, which "
          "srn-server then accepts at by default");
ABSL_FLAG(std::string, target_far, "0.01,0.001",
          "--calibrate: the false-accept rates to find thresholds for (each in (0, 1))");
ABSL_FLAG(std::string, calibration_default, "",
          "--calibrate: the server's default threshold: eer or far=<one of --target_far> "
          "(default: the first target)");
ABSL_FLAG(int, calibration_refs, 1,
          "--calibrate: references enrolled per subject in the Verify trials (their similarities "
          "averaged, as srn-server's default fusion does)");
ABSL_FLAG(std::string, calibrated_out, "",
          "--calibrate: write the calibrated weights file here (default: over --model)");
ABSL_FLAG(std::string, stamp_out, "",
          "write a copy of the weights file --model here with --verification recorded in it "
          "(srn-server then verifies with it), and exit");

namespace {

// The DTW baseline through a full test distance matrix (for t-SNE maps): the same scores as
// EvaluateDtw, written as CSV rows "index,label,label_name,forgery,group,source,d0..d(n-1)".
// Standardized with `standardize_on`'s statistics.
absl::StatusOr<srn::EvalResult> EvaluateDtwMatrix(const srn::Dataset& standardize_on,
                                                  const srn::Dataset& raw_test,
                                                  const srn::DtwOptions& dtw,
                                                  const srn::EvalOptions& eval, bool center,
                                                  const std::string& path) {
  absl::StatusOr<srn::Preprocessor> standardize =
      srn::Preprocessor::Fit(standardize_on.SeriesPointers(), 1, srn::FeatureKind::kFrames, center);
  if (!standardize.ok()) return standardize.status();
  absl::StatusOr<srn::Dataset> test = srn::PreprocessDataset(*standardize, raw_test);
  if (!test.ok()) return test.status();
  const int n = static_cast<int>(test->examples.size());
  Eigen::MatrixXf d = Eigen::MatrixXf::Zero(n, n);
  srn::ParallelFor(n, eval.threads > 0 ? eval.threads : srn::DefaultThreads(),
                   [&](int b, int e, int) {
                     for (int i = b; i < e; ++i) {
                       for (int j = 0; j < i; ++j) {
                         d(i, j) = static_cast<float>(srn::NormalizedDtwDistance(
                             test->examples[i].series, test->examples[j].series, dtw));
                       }
                     }
                   });
  d = d.selfadjointView<Eigen::Lower>();
  std::ofstream f(path);
  if (!f) return absl::PermissionDeniedError(absl::StrCat("cannot write ", path));
  f << "index,label,label_name,forgery,group,source";
  for (int k = 0; k < n; ++k) f << ",d" << k;
  f << "\n";
  for (int i = 0; i < n; ++i) {
    const srn::Example& ex = raw_test.examples[i];
    f << i << "," << ex.label << ",\"" << raw_test.label_names[ex.label] << "\","
      << (ex.forgery ? 1 : 0) << "," << ex.group << ",\"" << ex.source << "\"";
    for (int k = 0; k < n; ++k) f << "," << d(i, k);
    f << "\n";
  }
  if (!f.good()) return absl::DataLossError(absl::StrCat("error writing ", path));
  return srn::EvaluatePairs(
      *test, [&d](int i, int j) { return -static_cast<double>(d(i, j)); }, nullptr, eval);
}

absl::Status WriteEmbeddings(const srn::Dataset& test, const srn::RowMatrix& emb,
                             const std::string& path) {
  std::ofstream f(path);
  if (!f) return absl::PermissionDeniedError(absl::StrCat("cannot write ", path));
  f << "index,label,label_name,forgery,group,source";
  for (int k = 0; k < emb.cols(); ++k) f << ",e" << k;
  f << "\n";
  for (int i = 0; i < emb.rows(); ++i) {
    const srn::Example& e = test.examples[i];
    f << i << "," << e.label << ",\"" << test.label_names[e.label] << "\"," << (e.forgery ? 1 : 0)
      << "," << e.group << ",\"" << e.source << "\"";
    for (int k = 0; k < emb.cols(); ++k) f << "," << emb(i, k);
    f << "\n";
  }
  if (!f.good()) return absl::DataLossError(absl::StrCat("error writing ", path));
  return absl::OkStatus();
}

// The band --dtw_band asks for, or `fallback` when it was not given.
srn::DtwOptions BandOr(const srn::DtwOptions& fallback) {
  const double band = absl::GetFlag(FLAGS_dtw_band);
  if (std::isnan(band)) return fallback;
  return band >= 0 ? srn::DtwOptions::Fraction(band) : srn::DtwOptions::NoBand();
}

// A comma-separated list of numbers from flag `flag`; InvalidArgument naming it otherwise.
template <typename T>
absl::StatusOr<std::vector<T>> ParseList(const std::string& flag, const std::string& text) {
  std::vector<T> out;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    T x{};
    bool ok = false;
    if constexpr (std::is_integral_v<T>) {
      ok = absl::SimpleAtoi(part, &x);
    } else {
      ok = absl::SimpleAtod(part, &x);
    }
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, ": '", part, "' is not a number (expected a list like 1,5)"));
    }
    out.push_back(x);
  }
  return out;
}

// --protocol=cross-dataset. Returns the process exit code.
int RunCrossDataset(const std::string& model, const std::string& dataset,
                    const std::string& data_dir,
                    const std::optional<srn::VerificationCalibration>& calibration) {
  using srn::tools::Fail;
  const std::string tool = "srn-eval";
  srn::CrossDatasetRequest request;
  request.data_dir = data_dir;
  request.dataset = dataset;
  request.model = model;
  request.name = absl::GetFlag(FLAGS_name);
  request.calibration = calibration;
  request.fit_calibration = absl::GetFlag(FLAGS_fit_calibration);
  srn::SignatureCvOptions& o = request.options;
  o.draws = absl::GetFlag(FLAGS_draws);
  o.seed = absl::GetFlag(FLAGS_seed) >= 0 ? static_cast<uint64_t>(absl::GetFlag(FLAGS_seed)) : 1;
  o.threads = absl::GetFlag(FLAGS_threads);
  absl::StatusOr<std::vector<int>> refs = ParseList<int>("refs", absl::GetFlag(FLAGS_refs));
  if (!refs.ok()) return Fail(tool, refs.status());
  if (refs->empty()) return Fail(tool, absl::InvalidArgumentError("--refs is empty"));
  o.refs = *refs;
  if (const std::string w = absl::GetFlag(FLAGS_fuse_dtw); !w.empty()) {
    absl::StatusOr<std::vector<double>> weights = ParseList<double>("fuse_dtw", w);
    if (!weights.ok()) return Fail(tool, weights.status());
    request.fuse_dtw_weights = *weights;
  }
  absl::StatusOr<std::vector<double>> thresholds =
      ParseList<double>("thresholds", absl::GetFlag(FLAGS_thresholds));
  if (!thresholds.ok()) return Fail(tool, thresholds.status());
  request.thresholds = *thresholds;
  request.max_signers = absl::GetFlag(FLAGS_signers);
  request.drop_pressure = absl::GetFlag(FLAGS_drop_pressure);
  request.served_trials_csv = absl::GetFlag(FLAGS_served_trials);
  if (o.draws < 20) {
    std::cerr << "note: " << o.draws << " draws of references; the figures in docs/ use 20 or "
              << "more (--draws=20)\n";
  }
  absl::StatusOr<std::vector<std::string>> lines = srn::RunCrossDatasetReport(request, std::cerr);
  if (!lines.ok()) return Fail(tool, lines.status());
  for (const std::string& line : *lines) std::cout << line << std::endl;
  return 0;
}

// --plot, or --roc_csv's path with .svg in place of its extension; "" for neither.
std::string PlotPath() {
  if (std::string plot = absl::GetFlag(FLAGS_plot); !plot.empty()) return plot;
  std::string roc = absl::GetFlag(FLAGS_roc_csv);
  if (roc.empty()) return "";
  const size_t slash = roc.find_last_of('/'), dot = roc.find_last_of('.');
  if (dot != std::string::npos && (slash == std::string::npos || dot > slash)) roc.resize(dot);
  return roc + ".svg";
}

// --calibrate: the thresholds of `model` measured on `test`, written into the weights file.
absl::StatusOr<srn::CalibrationReport> Calibrate(
    const std::shared_ptr<const srn::SimilarityModel>& model, const srn::Dataset& test,
    const std::string& dataset, srn::Protocol protocol, uint64_t seed, int threads) {
  srn::CalibrationRequest request;
  request.model = model;
  request.data = test;
  request.measured_on = absl::StrCat(dataset, " (--protocol=", srn::ProtocolName(protocol), ")");
  SRN_ASSIGN_OR_RETURN(request.target_fars,
                       ParseList<double>("target_far", absl::GetFlag(FLAGS_target_far)));
  request.default_choice = absl::GetFlag(FLAGS_calibration_default);
  request.trials.references = absl::GetFlag(FLAGS_calibration_refs);
  request.trials.draws = absl::GetFlag(FLAGS_draws);
  request.trials.seed = seed;
  request.trials.threads = threads;
  request.out = absl::GetFlag(FLAGS_calibrated_out);
  if (request.out.empty()) request.out = absl::GetFlag(FLAGS_model);
  return srn::RunCalibration(request, std::cerr);
}

}  // namespace

int main(int argc, char** argv) {
  srn::ShowOwnFlagsInHelp();
  absl::SetProgramUsageMessage(
      "evaluates a weights file or the DTW baseline on a protocol.\n"
      "Examples: srn-eval --model=voice.srnw --dataset=arabic-voice --protocol=out-of-domain\n"
      "          srn-eval --model=my.srnw --dataset=test.csv --protocol=test");
  srn::ParseCommandLineWithHelp(argc, argv);
  using srn::tools::Fail;
  const std::string tool = "srn-eval";
  if (absl::Status s = srn::tools::ApplyKernelsFlag(); !s.ok()) return Fail(tool, s);
  const std::string model_arg = absl::GetFlag(FLAGS_model);
  const std::string dataset = absl::GetFlag(FLAGS_dataset);
  if (model_arg.empty())
    return Fail(tool, absl::InvalidArgumentError("--model is required (a weights file or dtw)"));
  std::optional<srn::VerificationCalibration> calibration;
  if (const std::string text = absl::GetFlag(FLAGS_verification); !text.empty()) {
    absl::StatusOr<srn::VerificationCalibration> parsed = srn::ParseVerificationCalibration(text);
    if (!parsed.ok()) return Fail(tool, parsed.status());
    calibration = *parsed;
  }
  if (const std::string out = absl::GetFlag(FLAGS_stamp_out); !out.empty()) {
    if (!calibration.has_value()) {
      return Fail(tool, absl::InvalidArgumentError("--stamp_out needs --verification"));
    }
    absl::StatusOr<std::shared_ptr<const srn::SimilarityModel>> model = srn::LoadModel(model_arg);
    if (!model.ok()) return Fail(tool, model.status());
    srn::ModelMetadata metadata = (*model)->metadata();
    metadata.verification = srn::FormatVerificationCalibration(*calibration);
    absl::StatusOr<std::shared_ptr<const srn::SimilarityModel>> stamped =
        srn::SimilarityModel::Create((*model)->architecture(), (*model)->preprocessor(),
                                     (*model)->params(), metadata);
    if (!stamped.ok()) return Fail(tool, stamped.status());
    if (absl::Status saved = srn::SaveModel(**stamped, out); !saved.ok()) return Fail(tool, saved);
    std::cout << "wrote " << out << " (fingerprint " << srn::ModelFingerprint(**stamped)
              << ", verification " << metadata.verification << ")" << std::endl;
    return 0;
  }
  if (dataset.empty()) return Fail(tool, absl::InvalidArgumentError("--dataset is required"));
  std::string data_dir = absl::GetFlag(FLAGS_data_dir);
  if (data_dir.empty()) data_dir = srn::DataDir();
  if (absl::GetFlag(FLAGS_protocol) == "cross-dataset" ||
      absl::GetFlag(FLAGS_protocol) == "svc2004-cv") {
    if (absl::Status s = srn::tools::RequireNoClassChoice(absl::GetFlag(FLAGS_protocol)); !s.ok()) {
      return Fail(tool, s);
    }
  }
  if (absl::GetFlag(FLAGS_protocol) == "cross-dataset") {
    return RunCrossDataset(model_arg, dataset, data_dir, calibration);
  }
  if (absl::GetFlag(FLAGS_protocol) == "svc2004-cv") {
    srn::SignatureCvRequest request;
    request.data_dir = data_dir;
    request.model = model_arg;
    request.name = absl::GetFlag(FLAGS_name);
    request.det_csv = absl::GetFlag(FLAGS_det_csv);
    absl::StatusOr<srn::SrnScore> srn_score = srn::ParseSrnScore(absl::GetFlag(FLAGS_srn_score));
    if (!srn_score.ok()) return Fail(tool, srn_score.status());
    request.srn_score = *srn_score;
    srn::SignatureCvOptions& o = request.options;
    o.folds = absl::GetFlag(FLAGS_folds);
    o.draws = absl::GetFlag(FLAGS_draws);
    o.seed = absl::GetFlag(FLAGS_seed) >= 0 ? static_cast<uint64_t>(absl::GetFlag(FLAGS_seed)) : 1;
    o.threads = absl::GetFlag(FLAGS_threads);
    o.top_k = absl::GetFlag(FLAGS_top_k);
    // The signature DTW keeps its measured defaults (srn::SignatureDtwOptions) unless told.
    if (!std::isnan(absl::GetFlag(FLAGS_dtw_band))) {
      request.dtw.dtw = BandOr(request.dtw.dtw);  // --dtw_cost sets the cost below
      request.states_dtw = BandOr(request.states_dtw);
    }
    const std::string dtw_cost = absl::GetFlag(FLAGS_dtw_cost);
    if (dtw_cost != "euclidean" && dtw_cost != "squared") {
      return Fail(tool, absl::InvalidArgumentError(absl::StrCat(
                            "--dtw_cost must be euclidean or squared, got '", dtw_cost, "'")));
    }
    request.dtw.dtw.local_cost = dtw_cost == "squared" ? srn::DtwLocalCost::kSquaredEuclidean
                                                       : srn::DtwLocalCost::kEuclidean;
    const std::string states_cost = absl::GetFlag(FLAGS_states_cost);
    if (states_cost != "model" && states_cost != "euclidean" && states_cost != "squared") {
      return Fail(
          tool, absl::InvalidArgumentError(absl::StrCat(
                    "--states_cost must be model, euclidean or squared, got '", states_cost, "'")));
    }
    request.states_cost_from_model = states_cost == "model";
    request.states_dtw.local_cost = states_cost == "euclidean"
                                        ? srn::DtwLocalCost::kEuclidean
                                        : srn::DtwLocalCost::kSquaredEuclidean;
    const std::string dtw_features = absl::GetFlag(FLAGS_dtw_features);
    if (!dtw_features.empty()) request.dtw.features.clear();
    if (!dtw_features.empty() && dtw_features != "all") {
      for (absl::string_view f : absl::StrSplit(dtw_features, ',')) {
        int column = 0;
        if (!absl::SimpleAtoi(f, &column)) {
          return Fail(
              tool, absl::InvalidArgumentError(absl::StrCat("bad --dtw_features entry '", f, "'")));
        }
        request.dtw.features.push_back(column);
      }
    }
    const std::string dtw_normalize = absl::GetFlag(FLAGS_dtw_normalize);
    if (dtw_normalize != "train" && dtw_normalize != "series") {
      return Fail(tool, absl::InvalidArgumentError(absl::StrCat(
                            "--dtw_normalize must be train or series, got '", dtw_normalize, "'")));
    }
    request.dtw.per_series = dtw_normalize == "series";
    request.dtw_spread = absl::GetFlag(FLAGS_dtw_spread) && request.dtw.per_series;
    absl::StatusOr<srn::ReferenceFusion> fusion =
        srn::ParseReferenceFusion(absl::GetFlag(FLAGS_fusion));
    if (!fusion.ok()) return Fail(tool, fusion.status());
    o.fusion = *fusion;
    std::string norm = absl::GetFlag(FLAGS_normalization);
    if (norm.empty()) norm = model_arg == "dtw" ? "ratio" : "shift";
    absl::StatusOr<srn::ScoreNormalization> normalization = srn::ParseScoreNormalization(norm);
    if (!normalization.ok()) return Fail(tool, normalization.status());
    o.normalization = *normalization;
    o.refs.clear();
    for (absl::string_view r : absl::StrSplit(absl::GetFlag(FLAGS_refs), ',', absl::SkipEmpty())) {
      int n = 0;
      if (!absl::SimpleAtoi(r, &n)) return Fail(tool, absl::InvalidArgumentError("bad --refs"));
      o.refs.push_back(n);
    }
    for (absl::string_view w :
         absl::StrSplit(absl::GetFlag(FLAGS_fuse_dtw), ',', absl::SkipEmpty())) {
      double x = 0;
      if (!absl::SimpleAtod(w, &x)) return Fail(tool, absl::InvalidArgumentError("bad --fuse_dtw"));
      request.fuse_dtw_weights.push_back(x);
    }
    request.served_trials_csv = absl::GetFlag(FLAGS_served_trials);
    request.calibration = calibration;
    absl::StatusOr<std::vector<std::string>> lines = srn::RunSignatureCvReport(request, std::cerr);
    if (!lines.ok()) return Fail(tool, lines.status());
    for (const std::string& line : *lines) std::cout << line << std::endl;
    return 0;
  }
  absl::StatusOr<srn::Protocol> protocol = srn::ParseProtocol(absl::GetFlag(FLAGS_protocol));
  if (!protocol.ok()) return Fail(tool, protocol.status());
  if (*protocol == srn::Protocol::kAll) {
    return Fail(tool, absl::InvalidArgumentError(
                          "protocol 'all' has no test split to evaluate; to evaluate a model on "
                          "every class of a dataset (e.g. a separate test manifest) use "
                          "--protocol=test"));
  }
  const bool every_class_tests = *protocol == srn::Protocol::kTest;
  if (absl::GetFlag(FLAGS_calibrate) &&
      ((*protocol != srn::Protocol::kTest && *protocol != srn::Protocol::kOutOfDomain) ||
       model_arg == "dtw" || model_arg == "fisher-kernel" || model_arg == "fisher-vector")) {
    return Fail(tool, absl::InvalidArgumentError(
                          "--calibrate measures a weights file's thresholds on classes it never "
                          "saw: give --model=<file.srnw> and --protocol=test (a manifest of other "
                          "classes) or out-of-domain (the test classes of its training split)"));
  }

  std::shared_ptr<const srn::SimilarityModel> model;
  const bool fisher = model_arg == "fisher-kernel" || model_arg == "fisher-vector";
  if (fisher && every_class_tests) {
    return Fail(tool, absl::InvalidArgumentError(absl::StrCat(
                          "--model=", model_arg,
                          " fits its HMM on training classes, and "
                          "--protocol=test has none: use out-of-domain, or --model=dtw")));
  }
  if (model_arg != "dtw" && !fisher) {
    absl::StatusOr<std::shared_ptr<const srn::SimilarityModel>> loaded = srn::LoadModel(model_arg);
    if (!loaded.ok()) return Fail(tool, loaded.status());
    model = *std::move(loaded);
  }
  uint64_t seed = 1;
  if (absl::GetFlag(FLAGS_seed) >= 0) {
    seed = static_cast<uint64_t>(absl::GetFlag(FLAGS_seed));
  } else if (model != nullptr) {
    seed = model->metadata().seed;  // the split the model was trained with
  }
  absl::StatusOr<srn::Split> split = srn::tools::LoadAndSplit(dataset, data_dir, *protocol, seed);
  if (!split.ok()) return Fail(tool, split.status());
  std::string result_dataset = dataset;
  if (absl::GetFlag(FLAGS_drop_forgeries)) {
    const auto genuine = [](const srn::Example& e) { return !e.forgery; };
    for (srn::Dataset* d : {&split->train, &split->validation, &split->test})
      *d = d->Filter(genuine);
    result_dataset = dataset + "-noforg";
  }

  srn::EvalOptions eval;
  eval.seed = seed;
  eval.threads = absl::GetFlag(FLAGS_threads);
  eval.oneshot_draws = absl::GetFlag(FLAGS_draws);
  eval.max_pairs = absl::GetFlag(FLAGS_max_pairs);
  eval.want_oneshot = *protocol != srn::Protocol::kWithinDomain;
  eval.want_auc = *protocol != srn::Protocol::kOneShot || !absl::GetFlag(FLAGS_roc_csv).empty() ||
                  !PlotPath().empty();
  eval.keep_scores = !PlotPath().empty();

  absl::StatusOr<srn::EvalResult> result;
  std::string name = absl::GetFlag(FLAGS_name);
  if (fisher) {
    srn::FisherBaselineOptions fo;
    fo.candidate_states.clear();
    for (absl::string_view k :
         absl::StrSplit(absl::GetFlag(FLAGS_hmm_states), ',', absl::SkipEmpty())) {
      int v = 0;
      if (!absl::SimpleAtoi(k, &v))
        return Fail(tool, absl::InvalidArgumentError("bad --hmm_states"));
      fo.candidate_states.push_back(v);
    }
    fo.hmm.restarts = absl::GetFlag(FLAGS_hmm_restarts);
    fo.hmm.max_iterations = absl::GetFlag(FLAGS_hmm_iterations);
    fo.hmm.seed = seed;
    fo.hmm.threads = eval.threads;
    fo.vector_pairs = absl::GetFlag(FLAGS_fisher_pairs);
    fo.kernel_normalized = absl::GetFlag(FLAGS_fisher_normalized);
    srn::FisherReport report;
    result = srn::EvaluateFisher(
        model_arg == "fisher-kernel" ? srn::FisherMethod::kKernel : srn::FisherMethod::kVector,
        *split, fo, eval, &report);
    for (const auto& [k, ll] : report.selection.validation) {
      std::cerr << absl::StrFormat("hmm states %d: validation log-likelihood per frame %.4f\n", k,
                                   ll);
    }
    std::cerr << absl::StrFormat("hmm: %d states chosen, Fisher score of %d entries\n",
                                 report.selection.states, report.score_size);
    if (name.empty()) name = model_arg;
  } else if (model == nullptr) {
    const srn::DtwOptions dtw = BandOr(srn::DtwOptions::Fraction(0.1));
    // With no training classes (--protocol=test), the features are standardized with the test
    // series' own statistics: no labels are used.
    const srn::Dataset& standardize_on = every_class_tests ? split->test : split->train;
    if (every_class_tests) {
      std::cerr << "dtw: features standardized with the test series' own means and spreads "
                   "(no training data)\n";
    }
    if (!absl::GetFlag(FLAGS_dtw_matrix).empty()) {
      result =
          EvaluateDtwMatrix(standardize_on, split->test, dtw, eval,
                            absl::GetFlag(FLAGS_center_series), absl::GetFlag(FLAGS_dtw_matrix));
    } else {
      result = srn::EvaluateDtw(standardize_on, split->test, dtw, eval,
                                absl::GetFlag(FLAGS_center_series));
    }
    if (name.empty()) name = "dtw";
  } else {
    if (model->preprocessor().raw_dims != split->test.dims()) {
      return Fail(tool, absl::InvalidArgumentError(absl::StrFormat(
                            "the model takes %d features per frame but %s has %d",
                            model->preprocessor().raw_dims, dataset, split->test.dims())));
    }
    srn::RowMatrix emb;
    result = srn::EvaluateModel(*model, split->test, eval, &emb);
    if (result.ok() && !absl::GetFlag(FLAGS_embeddings_csv).empty()) {
      if (absl::Status s = WriteEmbeddings(split->test, emb, absl::GetFlag(FLAGS_embeddings_csv));
          !s.ok()) {
        return Fail(tool, s);
      }
    }
    if (name.empty()) name = model->architecture().FamilyName();
  }
  if (!result.ok()) return Fail(tool, result.status());
  if (result->has_auc) {
    std::cerr << absl::StrFormat("pairs %d  auc %.4f  eer %.4f\n", result->pairs, result->auc,
                                 result->eer.eer);
  }
  if (result->has_oneshot) {
    std::cerr << absl::StrFormat("one-shot accuracy %.4f +- %.4f over %d draws of %d queries\n",
                                 result->oneshot.accuracy, result->oneshot.stddev,
                                 result->oneshot.draws, result->oneshot.queries_per_draw);
  }
  if (!absl::GetFlag(FLAGS_roc_csv).empty()) {
    if (absl::Status s = srn::WriteOperatingPointsCsv(result->curve, absl::GetFlag(FLAGS_roc_csv));
        !s.ok()) {
      return Fail(tool, s);
    }
  }
  std::optional<srn::ThresholdCalibration> calibrated;
  if (absl::GetFlag(FLAGS_calibrate)) {
    absl::StatusOr<srn::CalibrationReport> report =
        Calibrate(model, split->test, dataset, *protocol, seed, eval.threads);
    if (!report.ok()) return Fail(tool, report.status());
    for (const std::string& line : report->lines) std::cout << line << "\n";
    calibrated = report->calibration;
  }
  if (const std::string svg = PlotPath(); !svg.empty()) {
    srn::EvaluationPlot plot;
    plot.title =
        absl::StrCat(name, " on ", result_dataset, " (--protocol=", srn::ProtocolName(*protocol),
                     "): AUC ", absl::StrFormat("%.4f", result->auc));
    plot.score_name = model != nullptr ? "similarity (as srn-server returns it)"
                                       : "score (higher = more similar)";
    plot.curve = result->curve;
    plot.scores = std::move(result->scores);
    plot.labels = std::move(result->labels);
    plot.eer = result->eer;
    if (calibrated.has_value()) {
      for (const srn::ThresholdCalibration::Point& p : calibrated->points) {
        plot.marks.push_back({absl::StrFormat("FAR<=%g", p.target_far), p.threshold, p.far, p.frr});
      }
    }
    if (absl::Status s = srn::WriteEvaluationSvg(plot, svg); !s.ok()) return Fail(tool, s);
    std::cerr << "wrote " << svg << "\n";
  }
  std::cout << srn::ResultLine(*protocol, result_dataset, name, *result,
                               srn::IsSignatureDataset(dataset))
            << std::endl;
  return 0;
}
