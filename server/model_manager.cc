#include "server/model_manager.h"

#include <chrono>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace srn {

absl::StatusOr<std::shared_ptr<const ServingModel>> ModelManager::ChooseInitial(
    const std::string& weights_path, ModelRegistry* registry,
    const CalibrationOverride& calibration) {
  if (registry != nullptr && registry->active_version() > 0) {
    const int64_t active = registry->active_version();
    absl::StatusOr<std::shared_ptr<const ServingModel>> loaded = registry->LoadVersion(active);
    if (loaded.ok()) return loaded;
    // A damaged or missing active file must not stop every restart (a crash loop): the newest
    // version that loads serves, loudly, until someone activates a good one.
    for (int64_t version : registry->LoadableVersions()) {
      if (version == active) continue;
      absl::StatusOr<std::shared_ptr<const ServingModel>> fallback =
          registry->LoadVersion(version);
      if (!fallback.ok()) continue;
      std::cerr << "srn-server: WARNING: the active model version " << active << " of "
                << registry->dir() << " does not load (" << loaded.status().message()
                << "); serving version " << version
                << ", the newest that does. ListModels shows the error; replace the file or "
                   "activate a version (srnctl activate) to clear srn_model_fallback.\n";
      return fallback;
    }
    return absl::Status(
        loaded.status().code(),
        absl::StrCat("cannot load the active model version ", active, " of ", registry->dir(),
                     ", and no other version loads: ", loaded.status().message()));
  }
  if (weights_path.empty()) {
    return absl::FailedPreconditionError(
        "no weights file given (--weights) and no bundled default model found");
  }
  absl::StatusOr<std::shared_ptr<const ServingModel>> loaded =
      LoadServingModel(weights_path, "", calibration);
  if (!loaded.ok()) {
    return absl::Status(loaded.status().code(),
                        absl::StrCat("cannot load model: ", loaded.status().message()));
  }
  if (registry == nullptr) return loaded;
  absl::StatusOr<int64_t> imported = registry->ImportInitial(weights_path);
  if (!imported.ok()) {
    return absl::Status(imported.status().code(),
                        absl::StrCat("cannot import ", weights_path, " into the model directory: ",
                                     imported.status().message()));
  }
  return MakeServingModel((*loaded)->model, (*loaded)->source, absl::StrCat(*imported),
                          calibration);
}

ModelManager::ModelManager(ModelRegistry* registry, SimilarityCore* core, ServerMetrics* metrics)
    : registry_(registry), core_(core), metrics_(metrics) {}

absl::StatusOr<v1::ActivateModelResponse> ModelManager::Activate(int64_t version) {
  MutexLock activate(&activate_mu_);
  return ActivateLocked(version, false);
}

absl::StatusOr<v1::ActivateModelResponse> ModelManager::Rollback() {
  if (registry_ == nullptr) {
    return absl::FailedPreconditionError("model management needs --model_dir");
  }
  MutexLock activate(&activate_mu_);
  const int64_t target = registry_->PreviousVersion();
  if (target == 0) return absl::FailedPreconditionError("no earlier activation to roll back to");
  return ActivateLocked(target, true);
}

absl::StatusOr<v1::ActivateModelResponse> ModelManager::ActivateLocked(int64_t version,
                                                                       bool rollback) {
  if (registry_ == nullptr) {
    return absl::FailedPreconditionError("model management needs --model_dir");
  }
  v1::ActivateModelResponse response;
  SRN_ASSIGN_OR_RETURN(*response.mutable_model(), registry_->Find(version));
  response.mutable_model()->set_active(true);
  // No swap when `version` is served already. After a start-up fallback it is not the
  // registry's active version: activating it records it as such (and activating the damaged
  // active version, its file mended, swaps it in).
  if (!rollback && core_->model()->version == absl::StrCat(version)) {
    if (registry_->active_version() != version) {
      SRN_RETURN_IF_ERROR(registry_->RecordActivation(version, false));
      if (metrics_ != nullptr) metrics_->SetModelFallback(false);
    }
    return response;
  }
  absl::StatusOr<std::shared_ptr<const ServingModel>> serving = registry_->LoadVersion(version);
  if (!serving.ok()) {
    if (metrics_ != nullptr) metrics_->ModelSwap(false);
    return absl::Status(serving.status().code(), absl::StrCat("cannot activate version ", version,
                                                              ": ", serving.status().message()));
  }
  const auto start = std::chrono::steady_clock::now();
  int64_t reembedded = 0;
  const absl::Status swapped = core_->SwapModel(*serving, &reembedded);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (metrics_ != nullptr) {
    metrics_->ReembedSeconds(seconds);
    metrics_->ModelSwap(swapped.ok());
  }
  if (!swapped.ok()) {
    return absl::Status(swapped.code(), absl::StrCat("cannot activate version ", version,
                                                     " (the active model stays): ",
                                                     swapped.message()));
  }
  response.set_reembed_seconds(seconds);
  response.set_reembedded_subjects(reembedded);
  if (absl::Status s = registry_->RecordActivation(version, rollback); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("version ", version,
                                               " is active, but the manifest could not record it, "
                                               "so a restart would bring back the previous "
                                               "version: ", s.message()));
  }
  if (metrics_ != nullptr) metrics_->SetModelFallback(false);
  return response;
}

}  // namespace srn
