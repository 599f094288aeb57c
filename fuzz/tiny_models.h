#ifndef SRN_FUZZ_TINY_MODELS_H_
#define SRN_FUZZ_TINY_MODELS_H_

#include <cstdint>
#include <memory>
#include <string>

#include "model/data/preprocess.h"
#include "model/nn/similarity_model.h"

namespace srn::fuzz {

// An untrained model small enough to run on every fuzz input: `family` (e.g. "gru-l") with 3
// hidden units per layer, raw_dims features per frame of `kind`, and a preprocessing that does
// something (means and scales other than 0 and 1, the given window and centring). Weights are
// random but deterministic for the seed. Aborts on an invalid combination: a fuzz target's setup
// is fixed.
std::shared_ptr<const SimilarityModel> TinyModel(const std::string& family, FeatureKind kind,
                                                 int raw_dims, int window, bool center_series,
                                                 uint64_t seed);

}  // namespace srn::fuzz

#endif  // SRN_FUZZ_TINY_MODELS_H_
