// Fuzzes the SigComp2009 .hwr parser and the features LoadSigComp2009 computes from what it
// returns, resampled from 200 Hz (model/data/sigcomp2009.h): any bytes give an error naming the
// file, or pen-down samples whose features are finite (or refused with InvalidArgument).

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fuzz/fuzz_contract.h"
#include "model/data/sigcomp2009.h"
#include "model/data/signature_features.h"

namespace srn::fuzz {
namespace {

void FuzzSigComp2009File(absl::string_view text) {
  constexpr absl::string_view kName = "NFI-00101001.hwr";
  const absl::StatusOr<std::vector<PenSample>> samples = ParseSigComp2009File(text, kName);
  if (!samples.ok()) {
    RequireInputError(samples.status(), kName);
    return;
  }
  SRN_FUZZ_REQUIRE(!samples->empty());
  for (const PenSample& s : *samples) SRN_FUZZ_REQUIRE(s.pressure > 0);
  const absl::StatusOr<Series> features =
      ComputeTabletSignatureFeatures(*samples, /*has_pressure=*/true, kSigComp2009RateHz);
  if (!features.ok()) {
    SRN_FUZZ_REQUIRE(features.status().code() == absl::StatusCode::kInvalidArgument);
    return;
  }
  SRN_FUZZ_REQUIRE(IsUsableSeries(*features));
  SRN_FUZZ_REQUIRE(features->dims() == kSignatureFeatureDims);
}

}  // namespace
}  // namespace srn::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  srn::fuzz::FuzzSigComp2009File(absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
