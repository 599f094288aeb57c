#include "server/model_registry.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "base/file.h"
#include "base/status_macros.h"
#include "model/weights/weights_file.h"

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

}  // namespace

absl::StatusOr<std::unique_ptr<ModelRegistry>> ModelRegistry::Open(
    const std::string& dir, const CalibrationOverride& calibration) {
  if (dir.empty()) return absl::InvalidArgumentError("the model directory is empty");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir, ec)) {
    return absl::FailedPreconditionError(absl::StrCat("cannot use model directory ", dir, ": ",
                                                      ec ? ec.message() : "not a directory"));
  }
  const std::string absolute = std::filesystem::canonical(dir, ec).string();
  std::unique_ptr<ModelRegistry> registry(new ModelRegistry(ec ? dir : absolute, calibration));
  MutexLock lock(&registry->mu_);
  SRN_RETURN_IF_ERROR(registry->LoadManifest());
  return registry;
}

ModelRegistry::~ModelRegistry() {
  {
    MutexLock lock(&poll_mu_);
    stop_polling_ = true;
  }
  if (poller_.joinable()) poller_.join();
}

std::string ModelRegistry::PathOf(int64_t version) const {
  return absl::StrCat(dir_, "/v", version, ".srnw");
}

absl::Status ModelRegistry::LoadManifest() {
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
      history_.clear();
      for (size_t w = 1; w < words.size(); ++w) {
        for (absl::string_view v : absl::StrSplit(words[w], ' ', absl::SkipEmpty())) {
          if (!absl::SimpleAtoi(v, &n) || n < 1) {
            return absl::DataLossError(absl::StrCat(where, "bad version '", v, "' in the history"));
          }
          history_.push_back(n);
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
    versions_[version] = Describe(version, origin);
    next_version_ = std::max(next_version_, version + 1);
  }
  for (int64_t v : history_) {
    if (versions_.count(v) == 0) {
      return absl::DataLossError(absl::StrCat(path, ": the history names version ", v,
                                              ", which has no origin line"));
    }
  }
  return absl::OkStatus();
}

absl::Status ModelRegistry::SaveManifest() {
  while (history_.size() > kMaxHistory) history_.erase(history_.begin());
  std::string text = absl::StrCat(kManifestHeader, "\nnext ", next_version_, "\nhistory ",
                                  absl::StrJoin(history_, " "), "\n");
  for (const auto& [version, v] : versions_) {
    absl::StrAppend(&text, "origin ", version, " ", v.info.origin(), "\n");
  }
  return WriteFileAtomically(absl::StrCat(dir_, "/", kManifestName), text);
}

ModelRegistry::Version ModelRegistry::Describe(int64_t version, const std::string& origin) const {
  Version v;
  v.info.set_version(version);
  v.info.set_origin(origin);
  v.info.set_path(PathOf(version));
  absl::StatusOr<std::shared_ptr<const SimilarityModel>> model = LoadModel(PathOf(version));
  if (!model.ok()) {
    v.error = std::string(model.status().message());
    return v;
  }
  const SimilarityModel& m = **model;
  v.info.set_model_id(ModelFingerprint(m));
  v.info.set_family(m.architecture().FamilyName());
  v.info.set_input_features(m.preprocessor().raw_dims);
  v.info.set_signature(m.preprocessor().kind == FeatureKind::kSignature);
  if (auto it = m.metadata().metrics.find("val_auc"); it != m.metadata().metrics.end()) {
    v.info.set_val_auc(it->second);
  }
  v.info.set_created(m.metadata().created);
  v.info.set_training_data(m.metadata().training_data);
  return v;
}

int64_t ModelRegistry::active_version() const {
  MutexLock lock(&mu_);
  return history_.empty() ? 0 : history_.back();
}

absl::StatusOr<std::shared_ptr<const ServingModel>> ModelRegistry::LoadVersion(
    int64_t version) const {
  {
    MutexLock lock(&mu_);
    if (versions_.count(version) == 0) {
      return absl::NotFoundError(absl::StrCat("no model version ", version));
    }
  }
  return LoadServingModel(PathOf(version), absl::StrCat(version), calibration_);
}

absl::StatusOr<int64_t> ModelRegistry::Register(const std::string& from, const std::string& origin,
                                                bool rename) {
  const int64_t version = next_version_;
  if (rename && ::rename(from.c_str(), PathOf(version).c_str()) != 0) {
    return ErrnoStatus(absl::StrCat("cannot rename ", from, " to ", PathOf(version)), errno);
  }
  ++next_version_;
  versions_[version] = Describe(version, origin);
  SRN_RETURN_IF_ERROR(SaveManifest());
  return version;
}

absl::StatusOr<int64_t> ModelRegistry::ImportInitial(const std::string& path) {
  SRN_ASSIGN_OR_RETURN(std::shared_ptr<const SimilarityModel> model, LoadModel(path));
  MutexLock lock(&mu_);
  const int64_t version = next_version_;
  SRN_RETURN_IF_ERROR(SaveModel(*model, PathOf(version)));
  SRN_ASSIGN_OR_RETURN(const int64_t registered,
                       Register(PathOf(version), absl::StrCat("imported ", path), false));
  history_.push_back(registered);
  SRN_RETURN_IF_ERROR(SaveManifest());
  return registered;
}

absl::StatusOr<int64_t> ModelRegistry::AddModel(const SimilarityModel& model,
                                                const std::string& origin) {
  MutexLock lock(&mu_);
  SRN_RETURN_IF_ERROR(SaveModel(model, PathOf(next_version_)));
  return Register(PathOf(next_version_), origin, false);
}

absl::StatusOr<v1::ModelVersion> ModelRegistry::Find(int64_t version) const {
  MutexLock lock(&mu_);
  auto it = versions_.find(version);
  if (it == versions_.end()) return absl::NotFoundError(absl::StrCat("no model version ", version));
  return it->second.info;
}

int64_t ModelRegistry::PreviousVersion() const {
  MutexLock lock(&mu_);
  return history_.size() < 2 ? 0 : history_[history_.size() - 2];
}

absl::Status ModelRegistry::RecordActivation(int64_t version, bool rollback) {
  MutexLock lock(&mu_);
  if (rollback) {
    history_.pop_back();
  } else {
    history_.push_back(version);
  }
  return SaveManifest();
}

std::vector<int64_t> ModelRegistry::LoadableVersions() const {
  MutexLock lock(&mu_);
  std::vector<int64_t> out;
  for (auto it = versions_.rbegin(); it != versions_.rend(); ++it) {
    if (it->second.error.empty()) out.push_back(it->first);
  }
  return out;
}

v1::ListModelsResponse ModelRegistry::List() const {
  MutexLock lock(&mu_);
  v1::ListModelsResponse response;
  const int64_t active = history_.empty() ? 0 : history_.back();
  for (const auto& [version, v] : versions_) {
    v1::ModelVersion* out = response.add_models();
    *out = v.info;
    out->set_active(version == active);
    out->set_error(v.error);
  }
  response.set_active_version(active);
  return response;
}

std::optional<double> ModelRegistry::ActiveValAuc() const {
  MutexLock lock(&mu_);
  if (history_.empty()) return std::nullopt;
  auto it = versions_.find(history_.back());
  if (it == versions_.end() || it->second.info.model_id().empty()) return std::nullopt;
  if (it->second.info.val_auc() <= 0) return std::nullopt;
  return it->second.info.val_auc();
}

std::vector<int64_t> ModelRegistry::Poll() {
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
    if (own > 0 && versions_.count(own) > 0) continue;
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

void ModelRegistry::StartPolling(double seconds) {
  if (seconds <= 0 || poller_.joinable()) return;
  poller_ = std::thread([this, seconds] {
    for (;;) {
      {
        MutexLock lock(&poll_mu_);
        const auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(poll_mu_) {
          return stop_polling_;
        };
        if (poll_mu_.AwaitWithTimeout(stopping, absl::Seconds(seconds))) return;
      }
      Poll();
    }
  });
}

}  // namespace srn
