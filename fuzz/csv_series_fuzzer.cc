// Fuzzes the CSV series parser (model/data/csv_dataset.h) with the default limits and with tiny
// ones: any bytes give an error naming the file, or a finite series within the limits; a series
// that fits the tiny limits parses identically under the default ones.

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fuzz/fuzz_contract.h"
#include "model/data/csv_dataset.h"

namespace srn::fuzz {
namespace {

constexpr absl::string_view kName = "series.csv";

// Checks one parse against the contract; returns whether it succeeded.
bool CheckParse(const absl::StatusOr<Series>& series, const SeriesLimits& limits) {
  if (!series.ok()) {
    RequireInputError(series.status(), kName);
    return false;
  }
  SRN_FUZZ_REQUIRE(IsUsableSeries(*series));
  SRN_FUZZ_REQUIRE(series->length() <= limits.max_length);
  SRN_FUZZ_REQUIRE(series->dims() <= limits.max_dims);
  return true;
}

void FuzzCsvSeries(absl::string_view text) {
  const SeriesLimits defaults;
  const absl::StatusOr<Series> series = ParseCsvSeries(text, kName, defaults);
  const bool ok = CheckParse(series, defaults);
  SeriesLimits tiny;
  tiny.max_length = 4;
  tiny.max_dims = 3;
  const absl::StatusOr<Series> small = ParseCsvSeries(text, kName, tiny);
  if (CheckParse(small, tiny)) {
    SRN_FUZZ_REQUIRE(ok);
    SRN_FUZZ_REQUIRE(small->length() == series->length() && small->dims() == series->dims());
    SRN_FUZZ_REQUIRE(small->frames() == series->frames());
  }
}

}  // namespace
}  // namespace srn::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  srn::fuzz::FuzzCsvSeries(absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
