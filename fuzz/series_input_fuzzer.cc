// Fuzzes the decoding of a request's series into a model's input (server/series_input.h), as the
// service runs it on every Embed, Similarity, Verify, Identify and Enroll: the input is a
// serialized srn.v1.SeriesInput (frames, or a pen trajectory), decoded for a frames model, for a
// signature model and as uploaded training data. Any message gives an error naming the series,
// or finite features within the request limits that the model's preprocessing and encoder take.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "fuzz/fuzz_contract.h"
#include "fuzz/tiny_models.h"
#include "model/data/signature_features.h"
#include "server/series_input.h"
#include "srn/v1/similarity.pb.h"

namespace srn::fuzz {
namespace {

constexpr char kWhat[] = "series[0]";

// Decodes `input` for `model` as the service does and checks what comes out.
void CheckDecodedFor(const v1::SeriesInput& input, const SimilarityModel& model,
                     const RequestLimits& limits) {
  const absl::StatusOr<Series> raw = ToRawSeries(input, model, limits, kWhat);
  if (!raw.ok()) {
    RequireInputError(raw.status(), kWhat);
    return;
  }
  SRN_FUZZ_REQUIRE(IsUsableSeries(*raw));
  SRN_FUZZ_REQUIRE(raw->dims() == model.preprocessor().raw_dims);
  SRN_FUZZ_REQUIRE(raw->length() <= limits.max_series_length);
  // The value range check promises that standardization stays finite.
  const absl::StatusOr<Series> features = model.preprocessor().Apply(*raw);
  SRN_FUZZ_REQUIRE(features.ok());
  SRN_FUZZ_REQUIRE(IsUsableSeries(*features));
  // The encoder may still overflow on a long series (the service checks embeddings), but it
  // must take the series.
  const Series* series[] = {&*raw};
  SRN_FUZZ_REQUIRE(model.Embed(series, /*threads=*/1).ok());
}

void CheckTrainingSeries(const v1::SeriesInput& input, const RequestLimits& limits) {
  const absl::StatusOr<Series> series = ToTrainingSeries(input, limits, kWhat);
  if (!series.ok()) {
    RequireInputError(series.status(), kWhat);
    return;
  }
  SRN_FUZZ_REQUIRE(IsUsableSeries(*series));
  SRN_FUZZ_REQUIRE(series->length() <= limits.max_series_length);
}

void FuzzSeriesInput(const uint8_t* data, size_t size) {
  // Built once: the models are immutable.
  static const std::shared_ptr<const SimilarityModel> frames_model =
      TinyModel("srn-a", FeatureKind::kFrames, /*raw_dims=*/3, /*window=*/2,
                /*center_series=*/true, /*seed=*/1);
  static const std::shared_ptr<const SimilarityModel> signature_model =
      TinyModel("gru-s", FeatureKind::kSignature, kSignatureFeatureDims, /*window=*/1,
                /*center_series=*/false, /*seed=*/2);
  v1::SeriesInput input;
  // gRPC refuses a message that does not parse before the service sees it.
  if (!input.ParseFromArray(data, static_cast<int>(size))) return;
  // The service's limits, but series of at most 2000 frames: the code paths are the same, and
  // 20000-frame series resampled from a few pen samples would take most of the fuzzing time.
  RequestLimits limits;
  limits.max_series_length = 2000;
  CheckDecodedFor(input, *frames_model, limits);
  CheckDecodedFor(input, *signature_model, limits);
  CheckTrainingSeries(input, limits);
  // Small limits, to reach them with small inputs.
  RequestLimits small;
  small.max_series_length = 16;
  CheckDecodedFor(input, *signature_model, small);
  CheckTrainingSeries(input, small);
}

}  // namespace
}  // namespace srn::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  srn::fuzz::FuzzSeriesInput(data, size);
  return 0;
}
