#ifndef SRN_SERVER_MODEL_REGISTRY_H_
#define SRN_SERVER_MODEL_REGISTRY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/nn/similarity_model.h"
#include "server/serving_model.h"
#include "srn/v1/training.pb.h"

namespace srn {

// The versions of the served model (numbered 1, 2, ...; a version's weights never change once
// registered) and the record of their activations, newest last, for rollback. A version whose
// weights no longer load is listed with its error and cannot be activated.
//
// The registry only keeps versions and activations; ModelManager activates (it re-embeds
// enrolled references and swaps the served model, then records the activation here). Reads
// answer from memory; Poll brings in what changed outside this process. Thread-safe.
//
// Two kinds: a directory one server owns (OpenDirectoryModelRegistry) and one in the PostgreSQL
// database that servers sharing a subject store share (OpenPostgresModelRegistry), where an
// activation by one server is followed by the others (ModelManager::Follow).
class ModelRegistry {
 public:
  virtual ~ModelRegistry() = default;

  // Where the versions are, for messages: the directory, or the database (without a password).
  virtual std::string location() const = 0;
  // Whether other servers change it too (then this one follows their activations).
  virtual bool shared() const = 0;

  // The active version (0 when none).
  virtual int64_t active_version() const = 0;
  // The version active before the current one (0 when none).
  virtual int64_t PreviousVersion() const = 0;
  // The version's model, loaded; NotFound for an unknown version.
  virtual absl::StatusOr<std::shared_ptr<const ServingModel>> LoadVersion(
      int64_t version) const = 0;
  // The versions whose weights loaded when last checked, newest first.
  virtual std::vector<int64_t> LoadableVersions() const = 0;
  // The description of `version` (with active unset); NotFound for an unknown version.
  virtual absl::StatusOr<v1::ModelVersion> Find(int64_t version) const = 0;
  virtual v1::ListModelsResponse List() const = 0;
  // The validation AUC recorded in the active version's weights, if any.
  std::optional<double> ActiveValAuc() const;

  // Start-up of an empty registry: registers the weights file at `path` as version 1 and makes
  // it active without a swap. Returns the active version afterwards: in a shared registry that
  // another server seeded first, that server's (and `path` is not registered).
  virtual absl::StatusOr<int64_t> ImportInitial(const std::string& path) = 0;
  // Registers `model` as a new version; `origin` says where it came from (e.g. "job-3").
  virtual absl::StatusOr<int64_t> AddModel(const SimilarityModel& model,
                                           const std::string& origin) = 0;
  // Records that `version` became active (a rollback forgets the current activation instead of
  // adding one), durably.
  virtual absl::Status RecordActivation(int64_t version, bool rollback) = 0;

  // Brings in what changed outside this process: weights files dropped into a directory, or
  // versions and activations other servers recorded in a shared registry. Returns the versions
  // added.
  virtual std::vector<int64_t> Poll() = 0;
  // Waits up to `seconds`; a shared registry returns early, true, when another server changed it
  // (then call Poll).
  virtual bool WaitForChange(double seconds) = 0;
};

// What a registry knows, as a value each kind keeps under its lock: every version (described
// once) and the activation history.
struct RegisteredVersion {
  v1::ModelVersion info;                         // without `active` and `error`
  std::string error;                             // why its weights do not load ("" when they do)
  std::shared_ptr<const SimilarityModel> model;  // the weights, when the registry keeps them
};
struct RegistryContents {
  std::map<int64_t, RegisteredVersion> versions;
  std::vector<int64_t> history;  // activations, oldest first; back() is active

  int64_t active() const { return history.empty() ? 0 : history.back(); }
  int64_t previous() const { return history.size() < 2 ? 0 : history[history.size() - 2]; }
  // The versions whose weights load, newest first.
  std::vector<int64_t> Loadable() const;
  // NotFound for an unknown version.
  absl::StatusOr<v1::ModelVersion> Find(int64_t version) const;
  v1::ListModelsResponse List() const;
};

// The description of `model` registered as `version` from `origin` (without path, error or
// active).
v1::ModelVersion DescribeModel(const SimilarityModel& model, int64_t version,
                               const std::string& origin);

// A registry in one directory that one server owns:
//   <dir>/v<N>.srnw   version N, never rewritten once there
//   <dir>/MANIFEST    the active version, the activation history (for rollback), the next
//                     version number and each version's origin; replaced atomically
//                     (write, fsync, rename, fsync the directory)
// Any other *.srnw file in the directory (e.g. written there by srn-train) is validated by
// Poll() and renamed to the next v<N>.srnw; a file that does not load is logged once and left
// alone, never registered or activated. Files ending in .tmp are ignored (SaveModel's
// temporaries). Opens (creating) `dir`, reads the manifest and checks every version's file;
// DataLoss for a damaged manifest. `calibration` applies to every version it loads (see
// ServingModel).
absl::StatusOr<std::unique_ptr<ModelRegistry>> OpenDirectoryModelRegistry(
    const std::string& dir, const CalibrationOverride& calibration = {});

// A registry in the PostgreSQL database at `uri` (a libpq URI, as for the subject store), shared
// by every server on it (server/postgres_model_registry.cc): versions' weights and activations
// are rows, each change is one transaction, and servers are notified of it. Unavailable when the
// database cannot be reached (the message names it without the password).
absl::StatusOr<std::unique_ptr<ModelRegistry>> OpenPostgresModelRegistry(
    const std::string& uri, const CalibrationOverride& calibration = {});

}  // namespace srn

#endif  // SRN_SERVER_MODEL_REGISTRY_H_
