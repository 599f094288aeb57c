#ifndef SRN_BASE_CLOCK_H_
#define SRN_BASE_CLOCK_H_

#include <chrono>
#include <cstdint>

namespace srn {

// Wall-clock time in milliseconds since the Unix epoch, as the store and the API record it.
inline int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace srn

#endif  // SRN_BASE_CLOCK_H_
