// Fuzzes the weights file loader (model/weights/weights_file.h). Each input is loaded twice: as
// a whole file (the frame: magic, version, length, checksum) and as the payload inside a valid
// frame, since a mutated payload would almost never match the checksum and the schema checks
// behind it would go untested. Any bytes give a loader error naming the file, or a model with
// finite parameters that SerializeModel writes back identically and that embeds a series.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fuzz/fuzz_contract.h"
#include "model/nn/similarity_model.h"
#include "model/weights/weights_file.h"

namespace srn::fuzz {
namespace {

constexpr absl::string_view kName = "model.srnw";

void CheckLoaded(const absl::StatusOr<std::shared_ptr<const SimilarityModel>>& loaded) {
  if (!loaded.ok()) {
    RequireInputError(loaded.status(), kName);
    return;
  }
  const SimilarityModel& model = **loaded;
  SRN_FUZZ_REQUIRE(model.params().allFinite());
  SRN_FUZZ_REQUIRE(model.preprocessor().mean.allFinite());
  SRN_FUZZ_REQUIRE(model.preprocessor().scale.allFinite());
  // What the loader accepted, the writer writes, and it loads back as the same model.
  const std::string saved = SerializeModel(model);
  const absl::StatusOr<std::shared_ptr<const SimilarityModel>> again = ParseModel(saved, kName);
  SRN_FUZZ_REQUIRE(again.ok());
  SRN_FUZZ_REQUIRE(ModelFingerprint(**again) == ModelFingerprint(model));
  SRN_FUZZ_REQUIRE(SerializeModel(**again) == saved);
  // The model takes a series of its raw width (its output may overflow: the service checks).
  Series zeros(3, model.preprocessor().raw_dims);
  zeros.mutable_frames().setZero();
  const Series* series[] = {&zeros};
  const absl::StatusOr<RowMatrix> embedding = model.Embed(series, /*threads=*/1);
  SRN_FUZZ_REQUIRE(embedding.ok());
  SRN_FUZZ_REQUIRE(embedding->rows() == 1 && embedding->cols() == model.embedding_dims());
}

void FuzzWeightsFile(absl::string_view bytes) {
  CheckLoaded(ParseModel(bytes, kName));
  CheckLoaded(ParseModel(weights_internal::FramePayload(bytes), kName));
}

}  // namespace
}  // namespace srn::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  srn::fuzz::FuzzWeightsFile(absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
