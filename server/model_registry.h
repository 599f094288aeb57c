#ifndef SRN_SERVER_MODEL_REGISTRY_H_
#define SRN_SERVER_MODEL_REGISTRY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/mutex.h"
#include "model/nn/similarity_model.h"
#include "server/serving_model.h"
#include "srn/v1/training.pb.h"

namespace srn {

// The versions of the served model, in one directory:
//   <dir>/v<N>.srnw   version N (N = 1, 2, ...), never rewritten once there
//   <dir>/MANIFEST    the active version, the activation history (for rollback), the next
//                     version number and each version's origin; replaced atomically
//                     (write, fsync, rename, fsync the directory)
// Any other *.srnw file in the directory (e.g. written there by srn-train) is validated by
// Poll() and renamed to the next v<N>.srnw; a file that does not load is logged once and left
// alone, never registered or activated. Files ending in .tmp are ignored (SaveModel's
// temporaries).
//
// The registry only keeps the versions and the record of activations; ModelManager activates
// (it re-embeds enrolled references and swaps the served model, then records it here).
// Thread-safe.
class ModelRegistry final {
 public:
  // Opens (creating) `dir`, reads the manifest and checks every v<N>.srnw file (a version whose
  // file no longer loads is listed with its error and cannot be activated). DataLoss for a
  // damaged manifest.
  // `calibration` applies to every version it loads (see ServingModel).
  static absl::StatusOr<std::unique_ptr<ModelRegistry>> Open(
      const std::string& dir, const CalibrationOverride& calibration = {});
  ~ModelRegistry();

  // The active version (0 when none) and its model, loaded, for start-up.
  int64_t active_version() const ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::shared_ptr<const ServingModel>> LoadVersion(int64_t version) const
      ABSL_LOCKS_EXCLUDED(mu_);

  // Copies the weights file at `path` in as a new version and makes it active without a swap
  // (start-up of an empty registry: the model the server starts with). Returns the version.
  absl::StatusOr<int64_t> ImportInitial(const std::string& path) ABSL_LOCKS_EXCLUDED(mu_);

  // The versions whose files loaded when last checked, newest first.
  std::vector<int64_t> LoadableVersions() const ABSL_LOCKS_EXCLUDED(mu_);

  // Writes `model` as a new version; `origin` says where it came from (e.g. "job-3").
  absl::StatusOr<int64_t> AddModel(const SimilarityModel& model, const std::string& origin)
      ABSL_LOCKS_EXCLUDED(mu_);

  // The description of `version` (with active unset); NotFound for an unknown version.
  absl::StatusOr<v1::ModelVersion> Find(int64_t version) const ABSL_LOCKS_EXCLUDED(mu_);
  // The version active before the current one (0 when none).
  int64_t PreviousVersion() const ABSL_LOCKS_EXCLUDED(mu_);
  // Records that `version` became active (a rollback forgets the current activation instead of
  // adding one) and saves the manifest.
  absl::Status RecordActivation(int64_t version, bool rollback) ABSL_LOCKS_EXCLUDED(mu_);

  v1::ListModelsResponse List() const ABSL_LOCKS_EXCLUDED(mu_);
  // The validation AUC recorded in the active version's file, if any.
  std::optional<double> ActiveValAuc() const ABSL_LOCKS_EXCLUDED(mu_);

  // Registers weights files dropped into the directory (see the class comment); returns the
  // versions added.
  std::vector<int64_t> Poll() ABSL_LOCKS_EXCLUDED(mu_);
  // Polls every `seconds` on a thread of its own until destruction (0: never).
  void StartPolling(double seconds);

  const std::string& dir() const { return dir_; }

 private:
  struct Version {
    v1::ModelVersion info;  // without `active`
    std::string error;      // why the file does not load ("" when it does)
  };

  ModelRegistry(std::string dir, CalibrationOverride calibration)
      : dir_(std::move(dir)), calibration_(std::move(calibration)) {}

  std::string PathOf(int64_t version) const;
  absl::Status SaveManifest() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status LoadManifest() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Loads and describes the file of `version`.
  Version Describe(int64_t version, const std::string& origin) const;
  // Renames a checked file to the next version number and records it.
  absl::StatusOr<int64_t> Register(const std::string& from, const std::string& origin,
                                   bool rename) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string dir_;
  const CalibrationOverride calibration_;

  mutable Mutex mu_;
  std::map<int64_t, Version> versions_ ABSL_GUARDED_BY(mu_);
  std::vector<int64_t> history_
      ABSL_GUARDED_BY(mu_);  // activations, oldest first; back() is active
  int64_t next_version_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<std::string, std::string> rejected_
      ABSL_GUARDED_BY(mu_);  // dropped file -> "size:mtime"

  Mutex poll_mu_;
  bool stop_polling_ ABSL_GUARDED_BY(poll_mu_) = false;
  std::thread poller_;
};

}  // namespace srn

#endif  // SRN_SERVER_MODEL_REGISTRY_H_
