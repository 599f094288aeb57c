#include "server/activation_policy.h"

#include "absl/status/statusor.h"

namespace srn {

bool ShouldActivate(v1::ActivationPolicy policy, double val_auc,
                    std::optional<double> active_val_auc) {
  switch (policy) {
    case v1::ACTIVATION_POLICY_ALWAYS:
      return true;
    case v1::ACTIVATION_POLICY_IF_BETTER:
      return !active_val_auc.has_value() || val_auc > *active_val_auc;
    default:
      return false;
  }
}

ActivationOutcome ApplyActivationPolicy(v1::ActivationPolicy policy, int64_t version,
                                        double val_auc, ModelManager* manager) {
  ActivationOutcome outcome;
  const std::optional<double> active = policy == v1::ACTIVATION_POLICY_IF_BETTER
                                           ? manager->registry()->ActiveValAuc()
                                           : std::nullopt;
  if (!ShouldActivate(policy, val_auc, active)) return outcome;
  absl::StatusOr<v1::ActivateModelResponse> activated = manager->Activate(version);
  outcome.activated = activated.ok();
  if (!activated.ok()) outcome.error = std::string(activated.status().message());
  return outcome;
}

}  // namespace srn
