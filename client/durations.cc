#include "client/durations.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "absl/strings/str_format.h"

namespace srn {

std::string FormatSeconds(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "-";
  if (seconds < 10) {
    // Truncated, not rounded: 9.96 s is not yet "10.0s".
    return absl::StrFormat("%.1fs", std::floor(seconds * 10) / 10);
  }
  const int64_t whole = static_cast<int64_t>(std::min(seconds, 1e15));  // no overflow
  if (whole < 60) return absl::StrFormat("%ds", whole);
  if (whole < 3600) return absl::StrFormat("%dm%02ds", whole / 60, whole % 60);
  return absl::StrFormat("%dh%02dm", whole / 3600, whole % 3600 / 60);
}

}  // namespace srn
