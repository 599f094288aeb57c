#ifndef SRN_BASE_FLAGS_HELP_H_
#define SRN_BASE_FLAGS_HELP_H_

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
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

// What --help prints: "<program>: <usage message>", then every flag of the program (Abseil's own
// too when `all`) sorted by name, each with its default and its help wrapped to 100 columns.
// Unlike Abseil's listing it names no source file, so no build machine's path shows.
inline std::string FlagsHelpText(absl::string_view program, bool all) {
  std::vector<const absl::CommandLineFlag*> flags;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (flag->IsRetired()) continue;
    if (!all && absl::StrContains(flag->Filename(), "absl/")) continue;
    flags.push_back(flag);
  }
  std::sort(flags.begin(), flags.end(),
            [](const auto* a, const auto* b) { return a->Name() < b->Name(); });
  std::string out = absl::StrCat(program, ": ", absl::ProgramUsageMessage(), "\n\nFlags:\n");
  constexpr size_t kWidth = 100;
  constexpr absl::string_view kIndent = "      ";
  for (const absl::CommandLineFlag* flag : flags) {
    const std::string def = flag->IsOfType<std::string>()
                                ? absl::StrCat("\"", flag->DefaultValue(), "\"")
                                : flag->DefaultValue();
    absl::StrAppend(&out, "  --", flag->Name(), " (default ", def, ")\n");
    std::string line(kIndent);
    for (absl::string_view word : absl::StrSplit(flag->Help(), ' ', absl::SkipEmpty())) {
      if (line.size() > kIndent.size() && line.size() + 1 + word.size() > kWidth) {
        absl::StrAppend(&out, line, "\n");
        line = std::string(kIndent);
      }
      absl::StrAppend(&line, line.size() > kIndent.size() ? " " : "", word);
    }
    if (line.size() > kIndent.size()) absl::StrAppend(&out, line, "\n");
  }
  if (!all) absl::StrAppend(&out, "\n--helpfull also lists Abseil's own flags.\n");
  return out;
}

// absl::ParseCommandLine, except that --help, --helpshort and --helpfull (or with one dash)
// print FlagsHelpText to stdout and exit with status 0: Debian's Abseil (2022) exits 1 for them
// and heads each group of flags with "Flags from <source path>". Set the usage message first.
inline std::vector<char*> ParseCommandLineWithHelp(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (arg == "--") break;
    const absl::string_view name = absl::StripPrefix(absl::StripPrefix(arg, "-"), "-");
    if (name == "help" || name == "helpshort" || name == "helpfull") {
      const absl::string_view path = argv[0];
      const size_t slash = path.rfind('/');
      const absl::string_view program =
          slash == absl::string_view::npos ? path : path.substr(slash + 1);
      std::cout << FlagsHelpText(program, name == "helpfull") << std::flush;
      std::exit(0);
    }
  }
  return absl::ParseCommandLine(argc, argv);
}

}  // namespace srn

#endif  // SRN_BASE_FLAGS_HELP_H_
