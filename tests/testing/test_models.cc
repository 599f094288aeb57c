#include "tests/testing/test_models.h"

#include "model/nn/parameters.h"

namespace srn::testing {

std::shared_ptr<const SimilarityModel> RandomModel(const std::string& family, int raw_dims,
                                                   int hidden, uint64_t seed, bool signature) {
  Architecture arch = *ParseFamily(family);
  arch.input_dims = raw_dims;
  if (!arch.is_logistic()) arch.hidden = hidden;
  Preprocessor pre;
  pre.kind = signature ? FeatureKind::kSignature : FeatureKind::kFrames;
  pre.raw_dims = raw_dims;
  pre.mean = Vector::Zero(raw_dims);
  pre.scale = Vector::Ones(raw_dims);
  pre.window = 1;
  // A larger range than training's init gives embeddings that differ clearly between inputs.
  Vector params = InitParameters(arch, 0.5f, seed);
  return *SimilarityModel::Create(arch, pre, params);
}

}  // namespace srn::testing
