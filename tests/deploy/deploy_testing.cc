#include "tests/deploy/deploy_testing.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/util/json_util.h"
#include "tests/client/e2e_harness.h"

namespace srn::testing {

std::string SourceDir() { return SRN_SOURCE_DIR; }
std::string BuildDir() { return SRN_BUILD_DIR; }
std::string SourcePath(const std::string& relative) { return SourceDir() + "/" + relative; }

absl::StatusOr<std::string> ReadFileText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::optional<std::string> FindTool(const std::string& name, const std::string& env_override) {
  if (const char* path = std::getenv(env_override.c_str()); path != nullptr && *path != '\0') {
    return std::string(path);
  }
  const char* path_env = std::getenv("PATH");
  if (path_env == nullptr) return std::nullopt;
  for (absl::string_view dir : absl::StrSplit(path_env, ':', absl::SkipEmpty())) {
    const std::string candidate = absl::StrCat(dir, "/", name);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

absl::StatusOr<BinaryFlags> FlagsOf(const std::string& binary) {
  BinaryFlags result;
  // base/flags_help.h's "  --name (default value)" followed by the help's lines, or Abseil's
  // "    --name (help...); default: value;" possibly wrapped over several lines.
  static const std::regex kFlag(R"(^\s+--([A-Za-z0-9_]+) \()");
  static const std::regex kOwnFlag(R"(^  --([A-Za-z0-9_]+) \(default (.*)\)$)");
  // srn's own variables, and libpq's that its help names (PGPASSWORD).
  static const std::regex kEnv(R"(\$((?:SRN|PG)[A-Z0-9_]+))");
  for (const char* help : {"--help", "--helpfull"}) {
    ProcessResult run = RunProcess({binary, help}, CleanEnvironment());
    const std::string text = run.out + run.err;
    if (run.exit_code == 127) return absl::NotFoundError(text);
    std::string current;
    std::string entry;
    auto finish = [&] {
      if (current.empty()) return;
      const size_t at = entry.rfind("default: ");
      if (at != std::string::npos) {
        std::string value(absl::StripAsciiWhitespace(absl::StripSuffix(entry.substr(at + 9), ";")));
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
          value = value.substr(1, value.size() - 2);
        }
        result.defaults[current] = value;
      }
      current.clear();
      entry.clear();
    };
    for (const std::string& line : Lines(text)) {
      std::smatch m;
      if (std::regex_match(line, m, kOwnFlag)) {
        finish();
        result.flags.insert(m[1]);
        std::string value = m[2];
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
          value = value.substr(1, value.size() - 2);
        }
        result.defaults[m[1]] = value;
      } else if (std::regex_search(line, m, kFlag)) {
        finish();
        current = m[1];
        result.flags.insert(current);
        entry = line;
      } else if (!current.empty() && absl::StartsWith(line, "      ")) {
        entry += " " + std::string(absl::StripAsciiWhitespace(line));
      } else {
        finish();
      }
    }
    finish();
    for (std::sregex_iterator it(text.begin(), text.end(), kEnv), end; it != end; ++it) {
      result.env_vars.insert((*it)[1]);
    }
  }
  if (result.flags.empty()) return absl::InternalError(absl::StrCat(binary, " listed no flags"));
  return result;
}

std::optional<std::pair<std::string, std::string>> ParseFlag(const std::string& arg) {
  if (!absl::StartsWith(arg, "--") || arg.size() < 3) return std::nullopt;
  const size_t eq = arg.find('=');
  if (eq == std::string::npos) return std::make_pair(arg.substr(2), std::string());
  return std::make_pair(arg.substr(2, eq - 2), arg.substr(eq + 1));
}

std::vector<std::string> FlagFileLines(const std::string& text) {
  std::vector<std::string> lines;
  for (const std::string& line : Lines(text)) {
    const std::string stripped(absl::StripAsciiWhitespace(line));
    if (stripped.empty() || stripped[0] == '#') continue;
    lines.push_back(stripped);
  }
  return lines;
}

absl::StatusOr<std::vector<google::protobuf::Struct>> ParseJsonObjects(const std::string& text) {
  std::vector<google::protobuf::Struct> objects;
  int depth = 0;
  bool in_string = false, escaped = false;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{') {
      if (depth++ == 0) start = i;
    } else if (c == '}') {
      if (--depth == 0) {
        google::protobuf::Struct object;
        const auto status =
            google::protobuf::util::JsonStringToMessage(text.substr(start, i + 1 - start), &object);
        if (!status.ok()) {
          return absl::InvalidArgumentError(absl::StrCat("bad JSON object at byte ", start, ": ",
                                                         status.ToString()));
        }
        objects.push_back(std::move(object));
      } else if (depth < 0) {
        return absl::InvalidArgumentError(absl::StrCat("unbalanced '}' at byte ", i));
      }
    }
  }
  if (depth != 0 || in_string) return absl::InvalidArgumentError("truncated JSON");
  return objects;
}

absl::StatusOr<google::protobuf::ListValue> ParseJsonArray(const std::string& text) {
  google::protobuf::ListValue list;
  const auto status = google::protobuf::util::JsonStringToMessage(text, &list);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad JSON array ", text, ": ", status.ToString()));
  }
  return list;
}

const google::protobuf::Value* Find(const google::protobuf::Struct& root,
                                    const std::vector<std::string>& path) {
  const google::protobuf::Value* value = nullptr;
  const google::protobuf::Struct* object = &root;
  for (const std::string& key : path) {
    if (object != nullptr) {
      auto it = object->fields().find(key);
      if (it == object->fields().end()) return nullptr;
      value = &it->second;
    } else {
      int index = 0;
      if (value == nullptr || !value->has_list_value() || !absl::SimpleAtoi(key, &index) ||
          index < 0 || index >= value->list_value().values_size()) {
        return nullptr;
      }
      value = &value->list_value().values(index);
    }
    object = value->has_struct_value() ? &value->struct_value() : nullptr;
  }
  return value;
}

std::string StringAt(const google::protobuf::Struct& root, const std::vector<std::string>& path) {
  const google::protobuf::Value* value = Find(root, path);
  return value != nullptr && value->has_string_value() ? value->string_value() : "";
}

std::optional<double> NumberAt(const google::protobuf::Struct& root,
                               const std::vector<std::string>& path) {
  const google::protobuf::Value* value = Find(root, path);
  if (value == nullptr || !value->has_number_value()) return std::nullopt;
  return value->number_value();
}

std::vector<const google::protobuf::Value*> ListAt(const google::protobuf::Struct& root,
                                                   const std::vector<std::string>& path) {
  std::vector<const google::protobuf::Value*> items;
  const google::protobuf::Value* value = Find(root, path);
  if (value == nullptr || !value->has_list_value()) return items;
  for (const google::protobuf::Value& item : value->list_value().values()) items.push_back(&item);
  return items;
}

absl::StatusOr<std::vector<google::protobuf::Struct>> RenderKustomization(
    const std::string& kubectl, const std::string& dir) {
  // kubectl must not find a real cluster configuration, whatever the developer's is.
  std::vector<std::string> env = CleanEnvironment();
  env.push_back("KUBECONFIG=/dev/null");
  ProcessResult rendered = RunProcess({kubectl, "kustomize", dir}, env, 60);
  if (rendered.exit_code != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("kubectl kustomize ", dir, " failed: ", rendered.err, rendered.out));
  }
  TempDir temp;
  const std::string yaml = temp.File("rendered.yaml");
  if (!WriteFile(yaml, rendered.out)) return absl::InternalError("cannot write " + yaml);
  ProcessResult json = RunProcess(
      {kubectl, "label", "--local", "-f", yaml, "-o", "json", "srn-deploy-test=rendered"}, env, 60);
  if (json.exit_code != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("kubectl label --local -o json on ", dir, " failed: ", json.err, json.out));
  }
  absl::StatusOr<std::vector<google::protobuf::Struct>> objects = ParseJsonObjects(json.out);
  if (!objects.ok()) return objects.status();
  // `-o json` prints a List when there are several objects on some kubectl versions.
  std::vector<google::protobuf::Struct> flat;
  for (google::protobuf::Struct& object : *objects) {
    if (StringAt(object, {"kind"}) == "List") {
      for (const google::protobuf::Value* item : ListAt(object, {"items"})) {
        if (item->has_struct_value()) flat.push_back(item->struct_value());
      }
    } else {
      flat.push_back(std::move(object));
    }
  }
  return flat;
}

}  // namespace srn::testing
