#ifndef SRN_MODEL_TOOLS_CALIBRATION_REPORT_H_
#define SRN_MODEL_TOOLS_CALIBRATION_REPORT_H_

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/data/dataset.h"
#include "model/eval/threshold_calibration.h"
#include "model/nn/similarity_model.h"

namespace srn {

// What `srn-eval --calibrate` does: measures acceptance thresholds for a model on classes it was
// never trained on (VerifyTrialScorer, CalibrateThresholds), checks how they hold on other unseen
// classes (calibrated on a random half of the classes, measured on the other half, over several
// halvings), and writes
// the model with the thresholds recorded (ModelMetadata::thresholds) for srn-server to accept at.
// Thread-compatible: one call at a time per `log`.

struct CalibrationRequest {
  std::shared_ptr<const SimilarityModel> model;
  Dataset data;             // the classes to calibrate on (the test part of a split)
  std::string measured_on;  // recorded with the thresholds, e.g. "new.csv (--protocol=test)"
  std::vector<double> target_fars = {0.01, 0.001};
  std::string default_choice;  // "eer" or "far=<t>"; "" for the first target
  VerifyTrialOptions trials;
  // Random halvings of the classes for the check (calibrated on one half, measured on the
  // other); 0 skips it.
  int check_halvings = 10;
  std::string out;  // the weights file to write (may be the model's own path)
};

struct CalibrationReport {
  std::vector<std::string> lines;  // to print: the thresholds, the check, "wrote ..."
  ThresholdCalibration calibration;  // as recorded
};

// The report (the thresholds, the half-and-half check, "wrote ..."), or an error saying what
// to do: FailedPrecondition for a model whose Verify score is already calibrated by its
// verification record (a signature model fused with DTW or scored by its states), and for data
// holding classes the model was trained on (named); InvalidArgument from the calibration.
// Progress goes to `log`.
absl::StatusOr<CalibrationReport> RunCalibration(const CalibrationRequest& request,
                                                std::ostream& log);

}  // namespace srn

#endif  // SRN_MODEL_TOOLS_CALIBRATION_REPORT_H_
