// Fuzzes the SVC2004 text parser and the features LoadSvc2004 computes from what it returns
// (model/data/svc2004.h): any bytes give an error naming the file, or samples whose features are
// finite (or refused with InvalidArgument).

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fuzz/fuzz_contract.h"
#include "model/data/signature_features.h"
#include "model/data/svc2004.h"

namespace srn::fuzz {
namespace {

void FuzzSvc2004File(absl::string_view text) {
  constexpr absl::string_view kName = "U1S1.TXT";
  bool has_pressure = false;
  const absl::StatusOr<std::vector<PenSample>> samples =
      ParseSvc2004File(text, kName, &has_pressure);
  if (!samples.ok()) {
    RequireInputError(samples.status(), kName);
    return;
  }
  SRN_FUZZ_REQUIRE(!samples->empty());
  const absl::StatusOr<Series> features =
      ComputeTabletSignatureFeatures(*samples, has_pressure, kSvc2004RateHz);
  if (!features.ok()) {
    SRN_FUZZ_REQUIRE(features.status().code() == absl::StatusCode::kInvalidArgument);
    return;
  }
  // At the tablet's own rate the samples are used as recorded: one frame each.
  SRN_FUZZ_REQUIRE(IsUsableSeries(*features));
  SRN_FUZZ_REQUIRE(features->dims() == kSignatureFeatureDims);
  SRN_FUZZ_REQUIRE(features->length() == static_cast<int>(samples->size()));
}

}  // namespace
}  // namespace srn::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  srn::fuzz::FuzzSvc2004File(absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
