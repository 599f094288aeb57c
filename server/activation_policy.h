#ifndef SRN_SERVER_ACTIVATION_POLICY_H_
#define SRN_SERVER_ACTIVATION_POLICY_H_

#include <cstdint>
#include <optional>
#include <string>

#include "server/model_manager.h"
#include "srn/v1/training.pb.h"

namespace srn {

// When a finished training job's model becomes the served one (TrainingSpec.activation).

// Whether a model with validation AUC `val_auc` replaces the active one under `policy`: ALWAYS
// does; IF_BETTER when it beats the active model's recorded AUC (`active_val_auc`), or the active
// model records none; MANUAL (and anything else) never. Pure.
bool ShouldActivate(v1::ActivationPolicy policy, double val_auc,
                    std::optional<double> active_val_auc);

// What applying the policy did: the version was activated, or `error` says why activating it
// failed (the job still succeeded; the active model stays).
struct ActivationOutcome {
  bool activated = false;
  std::string error;
};

// Applies `policy` to the job's new `version` (validation AUC `val_auc`) in the manager's
// registry. Thread-safe as the manager is; activating swaps the served model
// (ModelManager::Activate).
ActivationOutcome ApplyActivationPolicy(v1::ActivationPolicy policy, int64_t version,
                                        double val_auc, ModelManager* manager);

}  // namespace srn

#endif  // SRN_SERVER_ACTIVATION_POLICY_H_
