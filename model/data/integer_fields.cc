#include "model/data/integer_fields.h"

#include <charconv>
#include <cstddef>
#include <system_error>

namespace srn {
namespace {

inline bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

}  // namespace

bool IsBlankLine(absl::string_view line) {
  for (char c : line) {
    if (!IsBlank(c)) return false;
  }
  return true;
}

bool ParseIntegerFields(absl::string_view line, int64_t* out, int max, int* count,
                        absl::string_view* bad) {
  const char* p = line.data();
  const char* const end = p + line.size();
  *count = 0;
  while (true) {
    while (p < end && IsBlank(*p)) ++p;
    if (p == end) return true;
    int64_t value = 0;
    const std::from_chars_result r = std::from_chars(p, end, value);
    if (r.ec != std::errc() || (r.ptr < end && !IsBlank(*r.ptr))) {
      const char* token_end = p;
      while (token_end < end && !IsBlank(*token_end)) ++token_end;
      *bad = absl::string_view(p, static_cast<size_t>(token_end - p));
      return false;
    }
    if (*count < max) out[*count] = value;
    ++*count;
    p = r.ptr;
  }
}

}  // namespace srn
