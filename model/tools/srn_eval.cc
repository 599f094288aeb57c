// srn-eval: evaluates a weights file, or the DTW baseline, on one of the paper's protocols and
// ends with a machine-readable RESULT line.
//
//   srn-eval --model=voice.srnw --dataset=arabic-voice --protocol=out-of-domain
//   srn-eval --model=dtw --dataset=arabic-voice --protocol=out-of-domain --dtw_band=0.1

#include <fstream>
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "model/dataset.h"
#include "model/dtw.h"
#include "model/protocols.h"
#include "model/weights_file.h"
#include "model/tools/tool_common.h"

ABSL_FLAG(std::string, model, "", "a weights file written by srn-train, or 'dtw' for the DTW baseline");
ABSL_FLAG(std::string, dataset, "",
          "arabic-digit, arabic-voice, svc2004, or the path of a CSV manifest (docs/DATA_FORMATS.md)");
ABSL_FLAG(std::string, data_dir, "", "folder holding the public data sets (default: $SRN_DATA_DIR or ../shared/data)");
ABSL_FLAG(std::string, protocol, "out-of-domain", "within-domain, out-of-domain or one-shot");
ABSL_FLAG(int64_t, seed, -1, "split and draw seed (default: the weights file's training seed, else 1)");
ABSL_FLAG(int, draws, 10, "one-shot draws (one random reference per class each)");
ABSL_FLAG(int64_t, max_pairs, 0, "score a uniform sample of about this many trial pairs (0: all)");
ABSL_FLAG(double, dtw_band, 0.1, "DTW Sakoe-Chiba band as a fraction of the longer series (<0: none)");
ABSL_FLAG(bool, center_series, false, "DTW only: centre each series on its own mean first");
ABSL_FLAG(int, threads, 0, "worker threads (0: all cores)");
ABSL_FLAG(std::string, embeddings_csv, "", "write the test embeddings here (weights files only)");
ABSL_FLAG(std::string, roc_csv, "", "write ROC/DET operating points (threshold,far,frr) here");
ABSL_FLAG(std::string, name, "", "model name in the RESULT line (default: the family, or dtw)");

namespace {

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

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "evaluates a weights file or the DTW baseline on a protocol.\n"
      "Example: srn-eval --model=voice.srnw --dataset=arabic-voice --protocol=out-of-domain");
  absl::ParseCommandLine(argc, argv);
  using srn::tools::Fail;
  const std::string tool = "srn-eval";
  const std::string model_arg = absl::GetFlag(FLAGS_model);
  const std::string dataset = absl::GetFlag(FLAGS_dataset);
  if (model_arg.empty()) return Fail(tool, absl::InvalidArgumentError("--model is required (a weights file or dtw)"));
  if (dataset.empty()) return Fail(tool, absl::InvalidArgumentError("--dataset is required"));
  std::string data_dir = absl::GetFlag(FLAGS_data_dir);
  if (data_dir.empty()) data_dir = srn::DataDir();
  absl::StatusOr<srn::Protocol> protocol = srn::ParseProtocol(absl::GetFlag(FLAGS_protocol));
  if (!protocol.ok()) return Fail(tool, protocol.status());
  if (*protocol == srn::Protocol::kAll) {
    return Fail(tool, absl::InvalidArgumentError("protocol 'all' has no test split to evaluate"));
  }

  std::shared_ptr<const srn::SimilarityModel> model;
  if (model_arg != "dtw") {
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

  srn::EvalOptions eval;
  eval.seed = seed;
  eval.threads = absl::GetFlag(FLAGS_threads);
  eval.oneshot_draws = absl::GetFlag(FLAGS_draws);
  eval.max_pairs = absl::GetFlag(FLAGS_max_pairs);
  eval.want_oneshot = *protocol != srn::Protocol::kWithinDomain;
  eval.want_auc = *protocol != srn::Protocol::kOneShot || !absl::GetFlag(FLAGS_roc_csv).empty();

  absl::StatusOr<srn::EvalResult> result;
  std::string name = absl::GetFlag(FLAGS_name);
  if (model == nullptr) {
    const double band = absl::GetFlag(FLAGS_dtw_band);
    const srn::DtwOptions dtw = band >= 0 ? srn::DtwOptions::Fraction(band) : srn::DtwOptions::NoBand();
    result = srn::EvaluateDtw(split->train, split->test, dtw, eval, absl::GetFlag(FLAGS_center_series));
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
      if (absl::Status s = WriteEmbeddings(split->test, emb, absl::GetFlag(FLAGS_embeddings_csv)); !s.ok()) {
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
    if (absl::Status s = srn::WriteOperatingPointsCsv(result->curve, absl::GetFlag(FLAGS_roc_csv)); !s.ok()) {
      return Fail(tool, s);
    }
  }
  std::cout << srn::ResultLine(*protocol, dataset, name, *result, dataset == "svc2004") << std::endl;
  return 0;
}
