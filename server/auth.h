#ifndef SRN_SERVER_AUTH_H_
#define SRN_SERVER_AUTH_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace srn {

// What a caller may do: readers embed, compare, verify, identify and look; admins also enroll,
// delete, train and change models.
enum class Role { kNone = 0, kReader = 1, kAdmin = 2 };

// Bearer tokens and their roles. Tokens come from a file or the environment, never from the
// command line (where `ps` would show them). Immutable after loading; thread-safe.
class TokenAuth final {
 public:
  // No tokens: authentication is off and every caller is an admin.
  TokenAuth() = default;

  // Reads "<role> <token>" lines (role reader or admin; '#' comments and blank lines ignored).
  // InvalidArgument names the line of a malformed entry, an unknown role, a token shorter than
  // 16 characters or one listed before (each token has one role).
  // PermissionDenied, saying to chmod 600 it, when other users may read or change the file or
  // its group may change it. A file its group may read is accepted (a Kubernetes Secret mounted
  // with fsGroup is 0440) with a warning in `warning` (when given) for the caller to log.
  static absl::StatusOr<TokenAuth> FromFile(const std::string& path,
                                            std::string* warning = nullptr);
  // Adds tokens from $SRN_ADMIN_TOKEN and $SRN_READER_TOKEN when set (comma-separated lists).
  absl::Status AddFromEnvironment();

  bool enabled() const { return !tokens_.empty(); }

  // The role of the "authorization" metadata value ("Bearer <token>"): UNAUTHENTICATED when
  // missing or unknown (the message never echoes the token).
  absl::StatusOr<Role> Authenticate(const std::string* authorization) const;

  // OK when `role` may call something needing `required`, else PermissionDenied naming the role.
  static absl::Status Authorize(Role role, Role required, const std::string& method);

 private:
  absl::Status Add(const std::string& role, const std::string& token, const std::string& where);

  struct Entry {
    std::string token;
    Role role;
  };
  std::vector<Entry> tokens_;
};

}  // namespace srn

#endif  // SRN_SERVER_AUTH_H_
