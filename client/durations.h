#ifndef SRN_CLIENT_DURATIONS_H_
#define SRN_CLIENT_DURATIONS_H_

#include <string>

namespace srn {

// A duration as srnctl prints it, truncated to the precision that matters at its size:
// "0.4s" and "9.9s" under 10 seconds, "42s" under a minute, "3m07s" under an hour, then
// "2h05m". Negative and non-finite values (a job with no estimate yet) print as "-".
std::string FormatSeconds(double seconds);

}  // namespace srn

#endif  // SRN_CLIENT_DURATIONS_H_
