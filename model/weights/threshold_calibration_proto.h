#ifndef SRN_MODEL_WEIGHTS_THRESHOLD_CALIBRATION_PROTO_H_
#define SRN_MODEL_WEIGHTS_THRESHOLD_CALIBRATION_PROTO_H_

#include "model/nn/similarity_model.h"

namespace srn {

// Fills `out` from `calibration`. `Proto` is a ThresholdCalibration message of the weights file
// (srn.weights.v1) or of the API (srn.v1): both have the same fields, so one copy serves both.
template <typename Proto>
void ThresholdCalibrationToProto(const ThresholdCalibration& calibration, Proto* out) {
  for (const ThresholdCalibration::Point& p : calibration.points) {
    auto* q = out->add_points();
    q->set_target_far(p.target_far);
    q->set_threshold(p.threshold);
    q->set_far(p.far);
    q->set_frr(p.frr);
  }
  out->set_eer(calibration.eer);
  out->set_eer_threshold(calibration.eer_threshold);
  out->set_default_choice(calibration.default_choice);
  out->set_default_threshold(calibration.default_threshold);
  out->set_references(calibration.references);
  out->set_genuine_trials(calibration.genuine_trials);
  out->set_impostor_trials(calibration.impostor_trials);
  out->set_measured_on(calibration.measured_on);
}

}  // namespace srn

#endif  // SRN_MODEL_WEIGHTS_THRESHOLD_CALIBRATION_PROTO_H_
