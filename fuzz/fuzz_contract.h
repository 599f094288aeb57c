#ifndef SRN_FUZZ_FUZZ_CONTRACT_H_
#define SRN_FUZZ_FUZZ_CONTRACT_H_

#include <cstdio>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "model/data/series.h"

// What every fuzz target checks besides "no crash, no sanitizer report": a broken contract
// aborts, which libFuzzer reports as a crash and saves the input for.
#define SRN_FUZZ_REQUIRE(condition)                                                \
  do {                                                                             \
    if (!(condition)) ::srn::fuzz::ContractBroken(#condition, __FILE__, __LINE__); \
  } while (false)

namespace srn::fuzz {

[[noreturn]] inline void ContractBroken(const char* what, const char* file, int line) {
  std::fprintf(stderr, "%s:%d: fuzz contract broken: %s\n", file, line, what);
  std::abort();
}

// Parsers report bad input as InvalidArgument, DataLoss, ResourceExhausted or (for a newer
// weights file) FailedPrecondition; anything else (Internal, Unknown, ...) is a bug.
inline bool IsInputError(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kFailedPrecondition:
      return true;
    default:
      return false;
  }
}

// A parser's error: an input error whose message starts with the name it was given.
inline void RequireInputError(const absl::Status& status, absl::string_view name) {
  SRN_FUZZ_REQUIRE(!status.ok());
  SRN_FUZZ_REQUIRE(IsInputError(status));
  SRN_FUZZ_REQUIRE(absl::StartsWith(status.message(), name));
}

// A series a parser returned OK: non-empty and every value finite.
inline bool IsUsableSeries(const Series& series) {
  return series.length() > 0 && series.dims() > 0 && series.frames().allFinite();
}

}  // namespace srn::fuzz

#endif  // SRN_FUZZ_FUZZ_CONTRACT_H_
