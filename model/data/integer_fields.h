#ifndef SRN_MODEL_DATA_INTEGER_FIELDS_H_
#define SRN_MODEL_DATA_INTEGER_FIELDS_H_

#include <cstdint>

#include "absl/strings/string_view.h"

namespace srn {

// Line parsing shared by the tablet readers (SVC2004, SigComp2009), whose files are lines of
// whitespace-separated integers. Pure functions; thread-safe.

// Whether `line` holds only spaces, tabs and carriage returns (or nothing).
bool IsBlankLine(absl::string_view line);

// Parses the whitespace-separated (space, tab, CR) decimal integers of `line`, storing the first
// `max` of them in out[0..max). `*count` receives the number of integers on the line, even when
// it exceeds `max`. Returns false, with `*bad` set to the first token that is not an integer
// (e.g. "2.5", "x1", or one out of int64 range), and then `*count` is meaningless.
bool ParseIntegerFields(absl::string_view line, int64_t* out, int max, int* count,
                        absl::string_view* bad);

}  // namespace srn

#endif  // SRN_MODEL_DATA_INTEGER_FIELDS_H_
