#include "server/auth.h"

#include <sys/stat.h>

#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/file.h"

namespace srn {
namespace {

constexpr size_t kMinTokenLength = 16;

// Compares in time independent of where the strings first differ.
bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

absl::Status TokenAuth::Add(const std::string& role, const std::string& token,
                            const std::string& where) {
  Role r;
  if (role == "admin") {
    r = Role::kAdmin;
  } else if (role == "reader") {
    r = Role::kReader;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": unknown role '", role, "' (reader or admin)"));
  }
  if (token.size() < kMinTokenLength) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": tokens must have at least ", kMinTokenLength, " characters"));
  }
  for (const Entry& e : tokens_) {
    // One token, one role: a token listed twice would get whichever role came last.
    if (e.token == token) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": this token is already listed (as ", e.role == Role::kAdmin ? "admin" : "reader",
          "); give each token one line and one role"));
    }
  }
  tokens_.push_back({token, r});
  return absl::OkStatus();
}

absl::StatusOr<TokenAuth> TokenAuth::FromFile(const std::string& path, std::string* warning) {
  // As ssh does for private keys: a file others may read or change gives their tokens away.
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    const unsigned mode = st.st_mode & 0777;
    if ((mode & (S_IRWXO | S_IWGRP | S_IXGRP)) != 0) {
      return absl::PermissionDeniedError(absl::StrFormat(
          "tokens file %s is accessible by %s (mode %04o): run chmod 600 %s", path,
          (mode & S_IRWXO) != 0 ? "other users" : "its group for writing", mode, path));
    }
    if ((mode & S_IRGRP) != 0 && warning != nullptr) {
      *warning = absl::StrFormat(
          "WARNING: tokens file %s is readable by its group (mode %04o): every member can read "
          "the tokens; run chmod 600 %s unless the group is the server's own (as with a "
          "Kubernetes Secret mounted with fsGroup)",
          path, mode, path);
    }
  }
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  TokenAuth auth;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    const std::string where = absl::StrCat(path, ":", line_number);
    if (fields.size() != 2) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": expected '<role> <token>'"));
    }
    absl::Status s = auth.Add(fields[0], fields[1], where);
    if (!s.ok()) return s;
  }
  if (!auth.enabled()) return absl::InvalidArgumentError(absl::StrCat(path, ": no tokens"));
  return auth;
}

absl::Status TokenAuth::AddFromEnvironment() {
  for (const auto& [var, role] : {std::pair<const char*, const char*>{"SRN_ADMIN_TOKEN", "admin"},
                                  {"SRN_READER_TOKEN", "reader"}}) {
    const char* value = std::getenv(var);
    if (value == nullptr || *value == '\0') continue;
    for (absl::string_view token : absl::StrSplit(value, ',', absl::SkipEmpty())) {
      absl::Status s = Add(role, std::string(absl::StripAsciiWhitespace(token)), var);
      if (!s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Role> TokenAuth::Authenticate(const std::string* authorization) const {
  if (!enabled()) return Role::kAdmin;
  if (authorization == nullptr || authorization->empty()) {
    return absl::UnauthenticatedError("missing 'authorization: Bearer <token>' metadata");
  }
  absl::string_view value = *authorization;
  if (!absl::ConsumePrefix(&value, "Bearer ") && !absl::ConsumePrefix(&value, "bearer ")) {
    return absl::UnauthenticatedError("authorization metadata must be 'Bearer <token>'");
  }
  const std::string token(absl::StripAsciiWhitespace(value));
  Role found = Role::kNone;
  for (const Entry& e : tokens_) {
    if (ConstantTimeEquals(e.token, token)) found = e.role;
  }
  if (found == Role::kNone) return absl::UnauthenticatedError("unknown token");
  return found;
}

absl::Status TokenAuth::Authorize(Role role, Role required, const std::string& method) {
  if (static_cast<int>(role) >= static_cast<int>(required)) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(
      method, " needs the ", required == Role::kAdmin ? "admin" : "reader",
      " role; this token is a ", role == Role::kReader ? "reader" : "caller without a role"));
}

}  // namespace srn
