#ifndef SRN_BASE_FLAGS_HELP_H_
#define SRN_BASE_FLAGS_HELP_H_

#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

namespace srn {

// Makes --help (and --helpshort) list the program's own flags. Abseil's default lists only flags
// defined in a file named after the binary (srn-server.cc, ...), which matches none of srn's
// mains, so --help printed "No flags matched". Abseil's own flags stay under --helpfull.
inline void ShowOwnFlagsInHelp() {
  absl::FlagsUsageConfig config;
  config.contains_help_flags = [](absl::string_view file) {
    return !absl::StrContains(file, "absl/");
  };
  config.contains_helpshort_flags = config.contains_help_flags;
  absl::SetFlagsUsageConfig(config);
}

}  // namespace srn

#endif  // SRN_BASE_FLAGS_HELP_H_
