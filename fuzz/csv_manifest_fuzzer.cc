// Fuzzes the CSV manifest parser (model/data/csv_dataset.h) without reading the files it lists:
// any bytes give an error naming the manifest, or rows with a path (resolved against the
// manifest's folder unless absolute), a label and the line they came from.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "fuzz/fuzz_contract.h"
#include "model/data/csv_dataset.h"

namespace srn::fuzz {
namespace {

void FuzzCsvManifest(absl::string_view text) {
  const std::string manifest = "data/manifest.csv";
  const absl::StatusOr<std::vector<CsvManifestRow>> rows = ParseCsvManifest(text, manifest);
  if (!rows.ok()) {
    RequireInputError(rows.status(), manifest);
    return;
  }
  SRN_FUZZ_REQUIRE(!rows->empty());
  int previous_line = 1;  // the header's, at least
  for (const CsvManifestRow& row : *rows) {
    SRN_FUZZ_REQUIRE(!row.label.empty());
    SRN_FUZZ_REQUIRE(!row.path.empty());
    SRN_FUZZ_REQUIRE(row.path.front() == '/' || absl::StartsWith(row.path, "data/"));
    SRN_FUZZ_REQUIRE(row.line > previous_line);
    previous_line = row.line;
  }
}

}  // namespace
}  // namespace srn::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  srn::fuzz::FuzzCsvManifest(absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
