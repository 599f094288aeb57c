#include "fuzz/tiny_models.h"

#include <cstdio>
#include <cstdlib>

#include "absl/status/statusor.h"
#include "model/nn/architecture.h"
#include "model/nn/parameters.h"

namespace srn::fuzz {

std::shared_ptr<const SimilarityModel> TinyModel(const std::string& family, FeatureKind kind,
                                                 int raw_dims, int window, bool center_series,
                                                 uint64_t seed) {
  absl::StatusOr<Architecture> arch = ParseFamily(family);
  if (!arch.ok()) {
    std::fprintf(stderr, "TinyModel: %s\n", arch.status().ToString().c_str());
    std::abort();
  }
  arch->input_dims = raw_dims * window;
  if (!arch->is_logistic()) arch->hidden = 3;
  Preprocessor pre;
  pre.kind = kind;
  pre.raw_dims = raw_dims;
  pre.mean = Vector::LinSpaced(raw_dims, -1.0f, 1.0f);
  pre.scale = Vector::LinSpaced(raw_dims, 0.5f, 2.0f);
  pre.window = window;
  pre.center_series = center_series;
  const Vector params = InitParameters(*arch, 0.5f, seed);
  absl::StatusOr<std::shared_ptr<const SimilarityModel>> model =
      SimilarityModel::Create(*arch, pre, params);
  if (!model.ok()) {
    std::fprintf(stderr, "TinyModel: %s\n", model.status().ToString().c_str());
    std::abort();
  }
  return *std::move(model);
}

}  // namespace srn::fuzz
