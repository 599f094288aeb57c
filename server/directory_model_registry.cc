// The model registry in a directory that one server owns (see OpenDirectoryModelRegistry).

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/file.h"
#include "base/mutex.h"
#include "base/status_macros.h"
#include "model/weights/weights_file.h"
#include "server/model_registry.h"

namespace srn {
namespace {

constexpr char kManifestName[] = "MANIFEST";
constexpr char kManifestHeader[] = "srn-model-registry 1";
constexpr size_t kMaxHistory = 100;

absl::Status ErrnoStatus(const std::string& what, int err) {
  return absl::Status(err == ENOENT ? absl::StatusCode::kNotFound
                      : err == EACCES ? absl::StatusCode::kPermissionDenied
                      : err == ENOSPC ? absl::StatusCode::kResourceExhausted
                                      : absl::StatusCode::kUnavailable,
                      absl::StrCat(what, ": ", std::strerror(err)));
}

// The version of a registry file name "v<N>.srnw", or 0.
int64_t VersionOfName(const std::string& name) {
  if (!absl::StartsWith(name, "v") || !absl::EndsWith(name, ".srnw")) return 0;
  int64_t n = 0;
  if (!absl::SimpleAtoi(name.substr(1, name.size() - 6), &n) || n < 1) return 0;
  if (absl::StrCat("v", n, ".srnw") != name) return 0;  // no "v01.srnw" aliases
  return n;
}

class DirectoryModelRegistry final : public ModelRegistry {
 public:
  DirectoryModelRegistry(std::string dir, CalibrationOverride calibration)
      : dir_(std::move(dir)), calibration_(std::move(calibration)) {}

  std::string location() const override { return dir_; }
  bool shared() const override { return false; }
  int64_t active_version() const override ABSL_LOCKS_EXCLUDED(mu_);
  int64_t PreviousVersion() const override ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::shared_ptr<const ServingModel>> LoadVersion(int64_t version) const override
      ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<int64_t> LoadableVersions() const override ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<v1::ModelVersion> Find(int64_t version) const override ABSL_LOCKS_EXCLUDED(mu_);
  v1::ListModelsResponse List() const override ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<int64_t> ImportInitial(const std::string& path) override ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<int64_t> AddModel(const SimilarityModel& model, const std::string& origin) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status RecordActivation(int64_t version, bool rollback) override ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<int64_t> Poll() override ABSL_LOCKS_EXCLUDED(mu_);
  bool WaitForChange(double seconds) override {
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    return false;
  }

  absl::Status LoadManifest() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Mutex& mu() ABSL_LOCK_RETURNED(mu_) { return mu_; }

 private:
  std::string PathOf(int64_t version) const;
  absl::Status SaveManifest() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Loads and describes the file of `version`.
  RegisteredVersion Describe(int64_t version, const std::string& origin) const;
  // Renames a checked file to the next version number and records it.
  absl::StatusOr<int64_t> Register(const std::string& from, const std::string& origin, bool rename)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string dir_;
  const CalibrationOverride calibration_;

  mutable Mutex mu_;
  RegistryContents contents_ ABSL_GUARDED_BY(mu_);
  int64_t next_version_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<std::string, std::string> rejected_
      ABSL_GUARDED_BY(mu_);  // dropped file -> "size:mtime"
};

}  // namespace

absl::StatusOr<std::unique_ptr<ModelRegistry>> OpenDirectoryModelRegistry(
    const std::string& dir, const CalibrationOverride& calibration) {
  if (dir.empty()) return absl::InvalidArgumentError("the model directory is empty");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir, ec)) {
    return absl::FailedPreconditionError(absl::StrCat("cannot use model directory ", dir, ": ",
                                                      ec ? ec.message() : "not a directory"));
  }
  const std::string absolute = std::filesystem::canonical(dir, ec).string();
  auto registry = std::make_unique<DirectoryModelRegistry>(ec ? dir : absolute, calibration);
  MutexLock lock(&registry->mu());
  SRN_RETURN_IF_ERROR(registry->LoadManifest());
  return registry;
}

std::string DirectoryModelRegistry::PathOf(int64_t version) const {
  return absl::StrCat(dir_, "/v", version, ".srnw");
}

absl::Status DirectoryModelRegistry::LoadManifest() {
  const std::string path = absl::StrCat(dir_, "/", kManifestName);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return absl::OkStatus();  // a new registry
  SRN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  if (lines.empty() || lines[0] != kManifestHeader) {
    return absl::DataLossError(absl::StrCat(path, ":1: not a model registry manifest (expected '",
                                            kManifestHeader, "')"));
  }
  std::map<int64_t, std::string> origins;
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string where = absl::StrCat(path, ":", i + 1, ": ");
    std::vector<std::string> words = absl::StrSplit(lines[i], absl::MaxSplits(' ', 2));
    int64_t n = 0;
    if (words[0] == "next" && words.size() == 2 && absl::SimpleAtoi(words[1], &n) && n >= 1) {
      next_version_ = n;
    } else if (words[0] == "history") {
      contents_.history.clear();
      for (size_t w = 1; w < words.size(); ++w) {
        for (absl::string_view v : absl::StrSplit(words[w], ' ', absl::SkipEmpty())) {
          if (!absl::SimpleAtoi(v, &n) || n < 1) {
            return absl::DataLossError(absl::StrCat(where, "bad version '", v, "' in the history"));
          }
          contents_.history.push_back(n);
        }
      }
    } else if (words[0] == "origin" && words.size() >= 2 && absl::SimpleAtoi(words[1], &n) &&
               n >= 1) {
      origins[n] = words.size() == 3 ? words[2] : "";
    } else {
      return absl::DataLossError(absl::StrCat(where, "cannot parse '", lines[i], "'"));
    }
  }
  for (const auto& [version, origin] : origins) {
    contents_.versions[version] = Describe(version, origin);
    next_version_ = std::max(next_version_, version + 1);
  }
  for (int64_t v : contents_.history) {
    if (contents_.versions.count(v) == 0) {
      return absl::DataLossError(
          absl::StrCat(path, ": the history names version ", v, ", which has no origin line"));
    }
  }
  return absl::OkStatus();
}

absl::Status DirectoryModelRegistry::SaveManifest() {
  while (contents_.history.size() > kMaxHistory) contents_.history.erase(contents_.history.begin());
  std::string text = absl::StrCat(kManifestHeader, "\nnext ", next_version_, "\nhistory ",
                                  absl::StrJoin(contents_.history, " "), "\n");
  for (const auto& [version, v] : contents_.versions) {
    absl::StrAppend(&text, "origin ", version, " ", v.info.origin(), "\n");
  }
  return WriteFileAtomically(absl::StrCat(dir_, "/", kManifestName), text);
}

RegisteredVersion DirectoryModelRegistry::Describe(int64_t version,
                                                   const std::string& origin) const {
  RegisteredVersion v;
  v.info.set_version(version);
  v.info.set_origin(origin);
  v.info.set_path(PathOf(version));
  absl::StatusOr<std::shared_ptr<const SimilarityModel>> model = LoadModel(PathOf(version));
  if (!model.ok()) {
    v.error = std::string(model.status().message());
    return v;
  }
  v.info = DescribeModel(**model, version, origin);
  v.info.set_path(PathOf(version));
  return v;
}

int64_t DirectoryModelRegistry::active_version() const {
  MutexLock lock(&mu_);
  return contents_.active();
}

absl::StatusOr<std::shared_ptr<const ServingModel>> DirectoryModelRegistry::LoadVersion(
    int64_t version) const {
  {
    MutexLock lock(&mu_);
    if (contents_.versions.count(version) == 0) {
      return absl::NotFoundError(absl::StrCat("no model version ", version));
    }
  }
  return LoadServingModel(PathOf(version), absl::StrCat(version), calibration_);
}

absl::StatusOr<int64_t> DirectoryModelRegistry::Register(const std::string& from,
                                                         const std::string& origin, bool rename) {
  const int64_t version = next_version_;
  if (rename && ::rename(from.c_str(), PathOf(version).c_str()) != 0) {
    return ErrnoStatus(absl::StrCat("cannot rename ", from, " to ", PathOf(version)), errno);
  }
  ++next_version_;
  contents_.versions[version] = Describe(version, origin);
  SRN_RETURN_IF_ERROR(SaveManifest());
  return version;
}

absl::StatusOr<int64_t> DirectoryModelRegistry::ImportInitial(const std::string& path) {
  SRN_ASSIGN_OR_RETURN(std::shared_ptr<const SimilarityModel> model, LoadModel(path));
  MutexLock lock(&mu_);
  const int64_t version = next_version_;
  SRN_RETURN_IF_ERROR(SaveModel(*model, PathOf(version)));
  SRN_ASSIGN_OR_RETURN(const int64_t registered,
                       Register(PathOf(version), absl::StrCat("imported ", path), false));
  contents_.history.push_back(registered);
  SRN_RETURN_IF_ERROR(SaveManifest());
  return registered;
}

absl::StatusOr<int64_t> DirectoryModelRegistry::AddModel(const SimilarityModel& model,
                                                         const std::string& origin) {
  MutexLock lock(&mu_);
  SRN_RETURN_IF_ERROR(SaveModel(model, PathOf(next_version_)));
  return Register(PathOf(next_version_), origin, false);
}

absl::StatusOr<v1::ModelVersion> DirectoryModelRegistry::Find(int64_t version) const {
  MutexLock lock(&mu_);
  return contents_.Find(version);
}

int64_t DirectoryModelRegistry::PreviousVersion() const {
  MutexLock lock(&mu_);
  return contents_.previous();
}

absl::Status DirectoryModelRegistry::RecordActivation(int64_t version, bool rollback) {
  MutexLock lock(&mu_);
  if (rollback) {
    contents_.history.pop_back();
  } else {
    contents_.history.push_back(version);
  }
  return SaveManifest();
}

std::vector<int64_t> DirectoryModelRegistry::LoadableVersions() const {
  MutexLock lock(&mu_);
  return contents_.Loadable();
}

v1::ListModelsResponse DirectoryModelRegistry::List() const {
  MutexLock lock(&mu_);
  return contents_.List();
}

std::vector<int64_t> DirectoryModelRegistry::Poll() {
  std::vector<int64_t> added;
  std::error_code ec;
  std::vector<std::filesystem::path> candidates;
  for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
    const std::string name = entry.path().filename().string();
    if (!absl::EndsWith(name, ".srnw") || !entry.is_regular_file(ec)) continue;
    candidates.push_back(entry.path());
  }
  std::sort(candidates.begin(), candidates.end());
  MutexLock lock(&mu_);
  for (const auto& path : candidates) {
    const std::string name = path.filename().string();
    const int64_t own = VersionOfName(name);
    if (own > 0 && contents_.versions.count(own) > 0) continue;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) continue;
    const std::string key =
        absl::StrCat(st.st_size, ":", st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec);
    if (auto it = rejected_.find(name); it != rejected_.end() && it->second == key) continue;
    absl::StatusOr<std::shared_ptr<const SimilarityModel>> model = LoadModel(path.string());
    if (!model.ok()) {
      std::cerr << "srn-server: model registry: skipping " << path.string() << ": "
                << model.status().message() << "\n";
      rejected_[name] = key;
      continue;
    }
    absl::StatusOr<int64_t> version = Register(path.string(), absl::StrCat("dropped ", name), true);
    if (!version.ok()) {
      std::cerr << "srn-server: model registry: cannot register " << path.string() << ": "
                << version.status().message() << "\n";
      rejected_[name] = key;
      continue;
    }
    std::cerr << "srn-server: model registry: registered " << name << " as version " << *version
              << "\n";
    added.push_back(*version);
  }
  return added;
}

}  // namespace srn
