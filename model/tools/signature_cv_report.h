#ifndef SRN_MODEL_TOOLS_SIGNATURE_CV_REPORT_H_
#define SRN_MODEL_TOOLS_SIGNATURE_CV_REPORT_H_

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/eval/dtw.h"
#include "model/signature/signature_dtw.h"
#include "model/signature/signature_protocol.h"
#include "model/signature/verification.h"

namespace srn {

// The report srn-eval --protocol=svc2004-cv prints: the signer-disjoint protocol of
// model/signature/signature_protocol.h run end to end on SVC2004 for one system (DTW or a
// weights file per fold), with its fusion with DTW, FAR calibrations, DET curves and the trials
// as srn-server scores them. A tool's composition of the library's pieces, so it lives with the
// tools. Thread-compatible: one call at a time per `log`.

// What srn-eval --protocol=svc2004-cv runs.
struct SignatureCvRequest {
  std::string data_dir;
  // "dtw", or a weights file path in which "{fold}" is replaced by the fold number (0-based).
  std::string model;
  std::string name;  // model name in RESULT lines (default: dtw or the model family)
  SrnScore srn_score = SrnScore::kProbability;
  SignatureCvOptions options;
  // The DTW baseline (also the DTW half of the fusion below).
  SignatureDtwOptions dtw;
  // The band and frame cost of --srn_score=states-dtw; the frame cost is the one each model
  // records (FrameCostOf: squared unless trained otherwise) when states_cost_from_model.
  DtwOptions states_dtw = DtwOptions::Fraction(0.1);
  bool states_cost_from_model = true;
  // SRN only: also report the fusion srn + w * dtw (w chosen per fold from these on the other
  // folds) as model "<name>+dtw"; empty: no fusion.
  std::vector<double> fuse_dtw_weights;
  // Normalization of the DTW scores in fusion (the SRN's is options.normalization).
  ScoreNormalization dtw_normalization = ScoreNormalization::kRatio;
  // With one reference, divide DTW distances by the spread predicted from the reference's shape
  // (PredictFoldSpreads, ratio normalization only): the DTW verifier's, and with
  // SrnScore::kStatesDtw the states' (a spread model fitted on the states' own distances).
  bool dtw_spread = true;
  std::vector<double> calibrate_fars = {0.01, 0.05, 0.1};
  std::string det_csv;  // write the DET curves here ("" : don't)
  // Write every trial here as srn-server's Verify scores it ("" : don't): the model's recorded
  // verification calibration (of fold 0's weights file), or `calibration` when set, with the
  // options' reference fusion. CSV columns fold,refs,draw,signer,label,kind,query,references,
  // score: the query's and references' source files (references ';'-separated, in enrollment
  // order) and the score as a float (%.9g, which reads back to the same float).
  std::string served_trials_csv;
  std::optional<VerificationCalibration> calibration;
};

// Runs the protocol, writes a human-readable report to `log` and returns the RESULT lines.
absl::StatusOr<std::vector<std::string>> RunSignatureCvReport(const SignatureCvRequest& request,
                                                              std::ostream& log);

}  // namespace srn

#endif  // SRN_MODEL_TOOLS_SIGNATURE_CV_REPORT_H_
