#ifndef SRN_MODEL_TOOLS_CROSS_DATASET_REPORT_H_
#define SRN_MODEL_TOOLS_CROSS_DATASET_REPORT_H_

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/signature/signature_dtw.h"
#include "model/signature/signature_protocol.h"
#include "model/signature/verification.h"

namespace srn {

// The report srn-eval --protocol=cross-dataset prints: signature verification on a whole data
// set that the model never trained on (leave one data set out), the question a deployment on a
// new tablet and new people asks. Every signer of the data set is a test signer; for each signer
// and draw, `refs` genuine signatures are enrolled (MakeSignatureTrials: genuine, skilled and
// random trials; one global threshold for all signers). Three systems are scored on the very
// same trials:
//   dtw            the DTW verifier over hand-made features (ratio-normalized; with one
//                  reference divided by its predicted spread, from the calibration)
//   <name>-alone   the model's learned score without DTW: DTW over its per-frame states for
//                  states-DTW models (ratio-normalized like DTW), the pooled embedding's
//                  similarity (shift-normalized) otherwise
//   <name>         the served score, exactly as srn-server's Verify computes it from the model's
//                  verification calibration (ScoreVerification), with FRR and FAR at the shipped
//                  threshold 0.5 and at the request's other thresholds
// With `fit_calibration` the calibration is instead fitted on these trials and printed as a
// "to deploy: --verification=..." line for srn-eval --stamp_out: then the data set must be one
// the shipped model may train on but this model did not (see docs/RESULTS.md), never the data set
// the shipped model is judged on. A calibration can also be fitted on several data sets at once,
// each scored by a model that never saw it (`dataset` and `model` then list them in pairs), so
// that the offsets and spread models fit more than one tablet's signers and forgers: their
// groups of signers are pooled into one set of trials. Thread-compatible: one call at a time per
// `log`.

struct CrossDatasetRequest {
  std::string data_dir;
  // A signature data set (IsSignatureDataset); with fit_calibration, several separated by commas.
  std::string dataset;
  // A weights file, or "dtw" for the DTW verifier alone; with several data sets, one weights file
  // for each, in the same order, separated by commas.
  std::string model;
  std::string name;     // model name in RESULT lines (default: the weights file's base name)
  // refs, draws (at least 20 are asked for), seed, threads; normalization and fusion are the
  // protocol's (ratio for distances, shift for the embedding; mean fusion).
  SignatureCvOptions options;
  SignatureDtwOptions dtw;  // the DTW verifier
  // Replaces the model's recorded calibration (srn-eval --verification).
  std::optional<VerificationCalibration> calibration;
  // Fit the calibration here: the one-reference spread models of the states and of DTW, and for
  // one reference and for several (the largest of options.refs, which must hold 1 and more) the
  // DTW fusion weight among `fuse_dtw_weights` with the lowest skilled EER and the offset at its
  // equal-error point. (An embedding model's offsets only apply with a positive weight.)
  bool fit_calibration = false;
  std::vector<double> fuse_dtw_weights = {0.0};
  // Also report FRR and FARs of the served score at these thresholds (besides 0.5), e.g. the
  // model card's thresholds for target FARs.
  std::vector<double> thresholds;
  // With fit_calibration: print the threshold of the served score for each of these target FARs
  // on skilled forgeries (for the model card).
  std::vector<double> target_fars = {0.01, 0.05, 0.1};
  // Evaluate as if the tablet had no pressure channel (DropPressure on every signature): how the
  // model does on tablets without pressure.
  bool drop_pressure = false;
  // Evaluate only the data set's first `max_signers` signers (0: all): a quick check, not a
  // figure to report.
  int max_signers = 0;
  // Write every trial of the served score here, as srn-server's Verify scores it ("": don't;
  // kServedTrialsCsvHeader's format, "fold" being the group of signers).
  std::string served_trials_csv;
};

// "RESULT protocol=cross-dataset dataset=<d> model=<m> refs=<n> eer_skilled=<x> eer_random=<y>"
// plus, for the served score, " frr=<f> far_skilled=<s> far_random=<r>" at threshold 0.5.
// Fractions, means over draws.

// Runs the protocol, writes a human-readable report to `log` and returns the RESULT lines.
// FailedPrecondition when the model's training data names the data set.
absl::StatusOr<std::vector<std::string>> RunCrossDatasetReport(const CrossDatasetRequest& request,
                                                               std::ostream& log);

}  // namespace srn

#endif  // SRN_MODEL_TOOLS_CROSS_DATASET_REPORT_H_
