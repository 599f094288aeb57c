#ifndef SRN_SERVER_MODEL_MANAGER_H_
#define SRN_SERVER_MODEL_MANAGER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "base/cancellation.h"
#include "base/mutex.h"
#include "server/model_registry.h"
#include "server/server_metrics.h"
#include "server/serving_model.h"
#include "server/similarity_core.h"
#include "srn/v1/training.pb.h"

namespace srn {

// The served model's lifecycle in one place, as TF Serving keeps a servable's in its manager:
// which model a server starts with (ChooseInitial), loading registry versions into
// ServingModels, activation and rollback. An activation loads the version, has the core
// re-embed every enrolled reference with it off to the side and switch model and subjects
// together (SimilarityCore::SwapModel), and only then records it in the registry's manifest; on
// any failure the active model stays. Activations are serialized. Thread-safe; the registry
// (may be null: no --model_dir), the core and the metrics (may be null) must outlive it.
class ModelManager final {
 public:
  // The model a server starts with: the registry's active version when there is one (when its
  // file does not load, the newest version that does, with a warning on stderr; an error only
  // when none loads); otherwise the weights file at `weights_path`, which an empty registry
  // imports as version 1. `weights_path` must be given then (the caller passes the bundled
  // default). The caller sees a fallback as a version other than the registry's active one.
  static absl::StatusOr<std::shared_ptr<const ServingModel>> ChooseInitial(
      const std::string& weights_path, ModelRegistry* registry,
      const CalibrationOverride& calibration);

  ModelManager(ModelRegistry* registry, SimilarityCore* core, ServerMetrics* metrics);

  // Makes `version` the served model. Activating the active version changes nothing.
  // NotFound for an unknown version; FailedPrecondition without a registry.
  absl::StatusOr<v1::ActivateModelResponse> Activate(int64_t version)
      ABSL_LOCKS_EXCLUDED(activate_mu_);
  // Activates the version active before the current one and forgets the current activation;
  // FailedPrecondition when there is none.
  absl::StatusOr<v1::ActivateModelResponse> Rollback() ABSL_LOCKS_EXCLUDED(activate_mu_);

  // Serves the registry's active version when another server activated it in a shared registry
  // (or when this one serves another, e.g. after a start-up fallback whose cause was mended):
  // the version is loaded off to the side and the core adopts it with the subjects as stored,
  // whose embeddings by it the activating server wrote (SimilarityCore::AdoptModel). Nothing is
  // recorded. On failure the served model stays, and the error goes to stderr once per version.
  absl::Status Follow() ABSL_LOCKS_EXCLUDED(activate_mu_);
  // Until `stop` says stop: waits for changes of the registry (a shared one notifies; otherwise
  // every `poll_seconds`, 0: never), then polls it (ModelRegistry::Poll) and follows it. The
  // server runs it on a thread of its own.
  void FollowRegistry(const Cancellation& stop, double poll_seconds)
      ABSL_LOCKS_EXCLUDED(activate_mu_);

  // The versions on disk (null without --model_dir).
  ModelRegistry* registry() const { return registry_; }
  // The model being served.
  std::shared_ptr<const ServingModel> current() const { return core_->model(); }

 private:
  absl::StatusOr<v1::ActivateModelResponse> ActivateLocked(int64_t version, bool rollback)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(activate_mu_);

  ModelRegistry* const registry_;
  SimilarityCore* const core_;
  ServerMetrics* const metrics_;
  Mutex activate_mu_;                                        // held for a whole activation
  int64_t follow_failed_ ABSL_GUARDED_BY(activate_mu_) = 0;  // the version Follow last failed on
};

}  // namespace srn

#endif  // SRN_SERVER_MODEL_MANAGER_H_
