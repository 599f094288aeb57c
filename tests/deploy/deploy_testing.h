#ifndef SRN_TESTS_DEPLOY_DEPLOY_TESTING_H_
#define SRN_TESTS_DEPLOY_DEPLOY_TESTING_H_

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/struct.pb.h"

// Helpers for the deployment tests: where the source and build trees are, the external tools
// (kubectl, promtool), the flags the real binaries accept, and generic JSON access (documents
// are parsed into google.protobuf.Struct). Nothing here is thread-safe or needs to be.
namespace srn::testing {

// The repository root and the CMake build tree these tests were configured with.
std::string SourceDir();
std::string BuildDir();
std::string SourcePath(const std::string& relative);  // SourceDir()/relative

// The contents of a file, or NotFound.
absl::StatusOr<std::string> ReadFileText(const std::string& path);

// The absolute path of tool `name`: $<env_override> when set, else the first match on $PATH;
// nullopt when there is none.
std::optional<std::string> FindTool(const std::string& name, const std::string& env_override);

// The flags `binary` accepts, as listed by its --help and --helpfull ("--name (...)" lines), and
// the $SRN_* environment variables its help text names.
struct BinaryFlags {
  std::set<std::string> flags;
  std::map<std::string, std::string> defaults;  // flag -> default as printed (quotes removed)
  std::set<std::string> env_vars;
};
absl::StatusOr<BinaryFlags> FlagsOf(const std::string& binary);

// Splits "--name=value" / "--name" into name and value (value empty when absent); nullopt when
// `arg` is not a flag.
std::optional<std::pair<std::string, std::string>> ParseFlag(const std::string& arg);

// The non-comment, non-blank lines of an absl flag file.
std::vector<std::string> FlagFileLines(const std::string& text);

// Parses one JSON document, or a stream of concatenated documents (as `kubectl -o json` prints
// several objects), into Structs.
absl::StatusOr<std::vector<google::protobuf::Struct>> ParseJsonObjects(const std::string& text);
// Parses a JSON array.
absl::StatusOr<google::protobuf::ListValue> ParseJsonArray(const std::string& text);

// Follows `path` (object keys, or decimal indexes into lists) from `root`; nullptr when any step
// is missing.
const google::protobuf::Value* Find(const google::protobuf::Struct& root,
                                    const std::vector<std::string>& path);
// The string at `path`, or "" when missing or not a string.
std::string StringAt(const google::protobuf::Struct& root, const std::vector<std::string>& path);
// The number at `path`, or nullopt.
std::optional<double> NumberAt(const google::protobuf::Struct& root,
                               const std::vector<std::string>& path);
// The list at `path`, or an empty list.
std::vector<const google::protobuf::Value*> ListAt(const google::protobuf::Struct& root,
                                                   const std::vector<std::string>& path);

// `kubectl kustomize <dir>` then `kubectl label --local -o json` (which needs no cluster) to get
// JSON: the rendered objects. Errors carry kubectl's stderr.
absl::StatusOr<std::vector<google::protobuf::Struct>> RenderKustomization(
    const std::string& kubectl, const std::string& dir);

}  // namespace srn::testing

#endif  // SRN_TESTS_DEPLOY_DEPLOY_TESTING_H_
