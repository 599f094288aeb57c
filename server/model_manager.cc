#include "server/model_manager.h"

#include <algorithm>
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
                << registry->location() << " does not load (" << loaded.status().message()
                << "); serving version " << version
                << ", the newest that does. ListModels shows the error; replace the file or "
                   "activate a version (srnctl activate) to clear srn_model_fallback.\n";
      return fallback;
    }
    return absl::Status(
        loaded.status().code(),
        absl::StrCat("cannot load the active model version ", active, " of ", registry->location(),
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
                        absl::StrCat("cannot import ", weights_path, " into the model registry: ",
                                     imported.status().message()));
  }
  // A shared registry another server seeded first serves that server's model.
  return registry->LoadVersion(*imported);
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
  if (registry_->shared()) registry_->Poll();  // what other servers recorded a moment ago
  const int64_t target = registry_->PreviousVersion();
  if (target == 0) return absl::FailedPreconditionError("no earlier activation to roll back to");
  return ActivateLocked(target, true);
}

absl::StatusOr<v1::ActivateModelResponse> ModelManager::ActivateLocked(int64_t version,
                                                                       bool rollback) {
  if (registry_ == nullptr) {
    return absl::FailedPreconditionError("model management needs --model_dir");
  }
  if (registry_->shared() && !rollback) registry_->Poll();  // versions others added just now
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

absl::Status ModelManager::Follow() {
  if (registry_ == nullptr || !registry_->shared()) return absl::OkStatus();
  MutexLock activate(&activate_mu_);
  const int64_t active = registry_->active_version();
  if (active == 0 || core_->model()->version == absl::StrCat(active)) {
    follow_failed_ = 0;
    return absl::OkStatus();
  }
  absl::StatusOr<std::shared_ptr<const ServingModel>> serving = registry_->LoadVersion(active);
  const auto start = std::chrono::steady_clock::now();
  ServingModelAdoption adopted;
  absl::Status status = serving.status();
  if (status.ok()) status = core_->AdoptModel(*serving, &adopted);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!status.ok()) {
    if (follow_failed_ != active) {  // said (and counted) once per version
      if (metrics_ != nullptr) metrics_->ModelSwap(false);
      std::cerr << "srn-server: cannot serve model version " << active << ", which "
                << registry_->location() << " records as active: " << status.message()
                << "; serving version " << core_->model()->version << " meanwhile\n";
    }
    follow_failed_ = active;
    if (metrics_ != nullptr) metrics_->SetModelFallback(true);
    return status;
  }
  follow_failed_ = 0;
  if (metrics_ != nullptr) {
    metrics_->ModelSwap(true);
    metrics_->ReembedSeconds(seconds);
    metrics_->SetModelFallback(false);
  }
  std::cerr << "srn-server: serving model version " << active << ", activated in "
            << registry_->location() << " (" << adopted.as_stored << " subjects as stored, "
            << adopted.reembedded << " re-embedded in memory, " << seconds << " s)\n";
  return absl::OkStatus();
}

void ModelManager::FollowRegistry(const Cancellation& stop, double poll_seconds) {
  if (registry_ == nullptr) return;
  auto last_poll = std::chrono::steady_clock::now();
  while (stop.Check().ok()) {
    const bool changed =
        registry_->WaitForChange(poll_seconds > 0 ? std::min(0.5, poll_seconds) : 0.5);
    const auto now = std::chrono::steady_clock::now();
    if (!changed && (poll_seconds <= 0 ||
                     std::chrono::duration<double>(now - last_poll).count() < poll_seconds)) {
      continue;
    }
    last_poll = now;
    registry_->Poll();
    Follow().IgnoreError();  // said on stderr
  }
}

}  // namespace srn
