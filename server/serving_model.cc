#include "server/serving_model.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "model/data/preprocess.h"
#include "model/signature/frame_triplet_trainer.h"
#include "model/weights/weights_file.h"

namespace srn {

bool ServingModel::FusesDtw() const {
  return calibration.dtw_fusion.enabled() &&
         model->preprocessor().kind == FeatureKind::kSignature;
}

bool ServingModel::VerifiesByStates() const {
  return calibration.learned == LearnedScore::kStatesDtw;
}

absl::StatusOr<std::shared_ptr<const ServingModel>> MakeServingModel(
    std::shared_ptr<const SimilarityModel> model, std::string source, std::string version,
    const CalibrationOverride& calibration) {
  auto serving = std::make_shared<ServingModel>();
  // An unreadable recorded calibration is an error unless the flags replace every part of it.
  const bool all_overridden =
      (calibration.dtw_fusion.has_value() || calibration.dtw_fusion_off) &&
      calibration.dtw_spread_set;
  absl::StatusOr<VerificationCalibration> recorded = ModelVerificationCalibration(*model);
  if (recorded.ok()) {
    serving->calibration = *std::move(recorded);
  } else if (!all_overridden) {
    return absl::Status(recorded.status().code(),
                        absl::StrCat(source, ": ", recorded.status().message()));
  }
  DtwFusionCalibration& fusion = serving->calibration.dtw_fusion;
  if (calibration.dtw_fusion_off) {
    fusion = serving->VerifiesByStates()
                 ? DtwFusionCalibration{0.0, fusion.offset_one, 0.0, fusion.offset_many}
                 : DtwFusionCalibration{};
  } else if (calibration.dtw_fusion.has_value()) {
    fusion = *calibration.dtw_fusion;
  }
  if (calibration.dtw_spread_set) serving->calibration.dtw_spread = calibration.dtw_spread;
  if (serving->VerifiesByStates()) {
    // FrameStates reads the normalization on every call; a model that cannot be read is refused
    // here, once, rather than failing each Verify.
    if (absl::Status readable = FrameNormalizationOf(*model).status(); !readable.ok()) {
      return absl::DataLossError(absl::StrCat(source, ": verifies by its states, but ",
                                              readable.message()));
    }
  }
  serving->id = ModelFingerprint(*model);
  serving->model = std::move(model);
  serving->source = std::move(source);
  serving->version = std::move(version);
  return std::shared_ptr<const ServingModel>(std::move(serving));
}

absl::StatusOr<std::shared_ptr<const ServingModel>> LoadServingModel(
    const std::string& path, std::string version, const CalibrationOverride& calibration) {
  SRN_ASSIGN_OR_RETURN(std::shared_ptr<const SimilarityModel> model, LoadModel(path));
  return MakeServingModel(std::move(model), path, std::move(version), calibration);
}

}  // namespace srn
