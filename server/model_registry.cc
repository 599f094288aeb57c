// What every model registry shares: the description of a version, and the active version's AUC.

#include "server/model_registry.h"

#include "absl/strings/str_cat.h"
#include "model/weights/weights_file.h"

namespace srn {

v1::ModelVersion DescribeModel(const SimilarityModel& model, int64_t version,
                               const std::string& origin) {
  v1::ModelVersion info;
  info.set_version(version);
  info.set_origin(origin);
  info.set_model_id(ModelFingerprint(model));
  info.set_family(model.architecture().FamilyName());
  info.set_input_features(model.preprocessor().raw_dims);
  info.set_signature(model.preprocessor().kind == FeatureKind::kSignature);
  if (auto it = model.metadata().metrics.find("val_auc"); it != model.metadata().metrics.end()) {
    info.set_val_auc(it->second);
  }
  info.set_created(model.metadata().created);
  info.set_training_data(model.metadata().training_data);
  return info;
}

std::vector<int64_t> RegistryContents::Loadable() const {
  std::vector<int64_t> out;
  for (auto it = versions.rbegin(); it != versions.rend(); ++it) {
    if (it->second.error.empty()) out.push_back(it->first);
  }
  return out;
}

absl::StatusOr<v1::ModelVersion> RegistryContents::Find(int64_t version) const {
  auto it = versions.find(version);
  if (it == versions.end()) return absl::NotFoundError(absl::StrCat("no model version ", version));
  return it->second.info;
}

v1::ListModelsResponse RegistryContents::List() const {
  v1::ListModelsResponse response;
  for (const auto& [version, v] : versions) {
    v1::ModelVersion* out = response.add_models();
    *out = v.info;
    out->set_active(version == active());
    out->set_error(v.error);
  }
  response.set_active_version(active());
  return response;
}

std::optional<double> ModelRegistry::ActiveValAuc() const {
  const int64_t active = active_version();
  if (active == 0) return std::nullopt;
  absl::StatusOr<v1::ModelVersion> info = Find(active);
  if (!info.ok() || info->model_id().empty() || info->val_auc() <= 0) return std::nullopt;
  return info->val_auc();
}

}  // namespace srn
