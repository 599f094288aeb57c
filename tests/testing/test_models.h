#ifndef SRN_TESTS_TESTING_TEST_MODELS_H_
#define SRN_TESTS_TESTING_TEST_MODELS_H_

#include <memory>
#include <string>

#include "model/nn/similarity_model.h"

namespace srn::testing {

// An untrained model with random weights (deterministic for the seed), for tests that need
// some model: `family` (e.g. "srn-a"), raw_dims features per frame, `hidden` units, identity
// preprocessing. With `signature`, its input kind is signature features.
std::shared_ptr<const SimilarityModel> RandomModel(const std::string& family, int raw_dims,
                                                   int hidden, uint64_t seed,
                                                   bool signature = false);

}  // namespace srn::testing

#endif  // SRN_TESTS_TESTING_TEST_MODELS_H_
