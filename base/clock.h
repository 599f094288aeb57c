#ifndef SRN_BASE_CLOCK_H_
#define SRN_BASE_CLOCK_H_

#include <chrono>
#include <cstdint>
#include <ctime>
#include <string>

namespace srn {

// Wall-clock time in milliseconds since the Unix epoch, as the store and the API record it.
inline int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The current UTC time in ISO 8601 ("2026-12-06T22:49:58Z"), as weights files record when a
// model was created.
inline std::string NowUtcIso8601() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace srn

#endif  // SRN_BASE_CLOCK_H_
