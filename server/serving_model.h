#ifndef SRN_SERVER_SERVING_MODEL_H_
#define SRN_SERVER_SERVING_MODEL_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "model/nn/similarity_model.h"
#include "model/signature/verification.h"

namespace srn {

// What a server's flags say about verification calibration (--dtw_fusion, --dtw_spread). A part
// that is not set comes from the served model's weights file; a set part replaces it for every
// model the server serves. What a model verifies by (its learned score and the states' DTW and
// spread) always comes from its weights file.
struct CalibrationOverride {
  std::optional<DtwFusionCalibration> dtw_fusion;
  // --dtw_fusion=off: no DTW verifier. A states model keeps its recorded offsets (its score stays
  // calibrated, with the learned part alone); an embedding model's score is its fused similarity.
  bool dtw_fusion_off = false;
  bool dtw_spread_set = false;
  std::optional<DtwSpreadModel> dtw_spread;  // with dtw_spread_set; unset: "off"
};

// The model a server answers with, and what identifies it. Immutable once made; shared by every
// request that started while it was served.
struct ServingModel {
  std::shared_ptr<const SimilarityModel> model;
  std::string id;       // ModelFingerprint(*model)
  std::string source;   // where it was loaded from
  std::string version;  // its version in the model registry ("" without one)
  // How Verify combines scores with this model: its recorded calibration, or the override.
  VerificationCalibration calibration;

  // Whether Verify fuses the DTW signature verifier: a signature model with fusion enabled.
  bool FusesDtw() const;
  // Whether Verify compares the encoder's per-frame states by DTW (calibration learned=
  // states-dtw) instead of the pooled embeddings. Identify and Embed always use the embeddings.
  bool VerifiesByStates() const;
};

// The one factory of ServingModel: fingerprints `model` and settles its calibration.
// DataLoss when the weights file's recorded calibration is unreadable (and not overridden), or
// when it asks for the states score of a model whose frame normalization is unreadable.
absl::StatusOr<std::shared_ptr<const ServingModel>> MakeServingModel(
    std::shared_ptr<const SimilarityModel> model, std::string source, std::string version,
    const CalibrationOverride& calibration = {});

// Loads the weights file at `path` and makes its ServingModel; errors name the path.
absl::StatusOr<std::shared_ptr<const ServingModel>> LoadServingModel(
    const std::string& path, std::string version, const CalibrationOverride& calibration = {});

}  // namespace srn

#endif  // SRN_SERVER_SERVING_MODEL_H_
