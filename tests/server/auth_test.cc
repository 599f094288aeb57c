#include "server/auth.h"

#include <sys/stat.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/scratch_dir.h"

namespace srn {
namespace {

class TokenAuthTest : public testing::ScratchDirTest {
 protected:
  std::string TokensFile(mode_t mode) {
    const std::string path = Write("tokens", "admin admin-token-0123456789abcdef\n");
    EXPECT_EQ(::chmod(path.c_str(), mode), 0);
    return path;
  }
};

TEST_F(TokenAuthTest, FileOthersMayReadOrChangeIsRefusedSayingChmod600) {
  for (const mode_t mode : {0644, 0604, 0602, 0660, 0620, 0666}) {
    SCOPED_TRACE(mode);
    const std::string path = TokensFile(mode);
    absl::StatusOr<TokenAuth> auth = TokenAuth::FromFile(path);
    EXPECT_EQ(auth.status().code(), absl::StatusCode::kPermissionDenied);
    EXPECT_NE(auth.status().message().find("chmod 600 " + path), std::string::npos)
        << auth.status();
  }
}

TEST_F(TokenAuthTest, PrivateFileIsAcceptedAndAGroupReadableOneWarns) {
  std::string warning;
  absl::StatusOr<TokenAuth> auth = TokenAuth::FromFile(TokensFile(0600), &warning);
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_TRUE(auth->enabled());
  EXPECT_EQ(warning, "");
  EXPECT_TRUE(TokenAuth::FromFile(TokensFile(0400)).ok());
  // A Kubernetes Secret mounted with fsGroup is 0440: accepted, loudly.
  auth = TokenAuth::FromFile(TokensFile(0440), &warning);
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_NE(warning.find("WARNING: tokens file"), std::string::npos) << warning;
  EXPECT_NE(warning.find("chmod 600"), std::string::npos) << warning;
}

TEST_F(TokenAuthTest, MalformedFilesNameTheLineAndWhatIsWrong) {
  struct Case {
    std::string text;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"admin\n", ":1: expected '<role> <token>'"},
      {"# tokens\n\nadmin one-token-0123456789 extra\n", ":3: expected '<role> <token>'"},
      {"owner owner-token-0123456789\n", ":1: unknown role 'owner' (reader or admin)"},
      {"Admin admin-token-0123456789\n", ":1: unknown role 'Admin'"},  // roles are lower case
      {"reader short\n", ":1: tokens must have at least 16 characters"},
      {"reader shared-token-0123456789\nadmin shared-token-0123456789\n",
       ":2: this token is already listed (as reader); give each token one line and one role"},
      {"", ": no tokens"},
      {"# only a comment\n\n", ": no tokens"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    const std::string path = Write("tokens", c.text);
    ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
    absl::StatusOr<TokenAuth> auth = TokenAuth::FromFile(path);
    EXPECT_EQ(auth.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(auth.status().message().find(path + c.message), std::string::npos) << auth.status();
  }
  EXPECT_EQ(TokenAuth::FromFile(dir() + "/missing").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(TokenAuthTest, AuthenticatesBearerTokensByRoleAndNeverEchoesThem) {
  const std::string path = Write("tokens",
                                 "  admin\tadmin-token-0123456789  \n"
                                 "reader reader-token-0123456789\n");
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  absl::StatusOr<TokenAuth> auth = TokenAuth::FromFile(path);
  ASSERT_TRUE(auth.ok()) << auth.status();
  const auto role = [&](const std::string& header) { return auth->Authenticate(&header); };
  EXPECT_EQ(*role("Bearer admin-token-0123456789"), Role::kAdmin);
  EXPECT_EQ(*role("bearer reader-token-0123456789"), Role::kReader);
  EXPECT_EQ(*role("Bearer   reader-token-0123456789  "), Role::kReader);  // spaces around
  for (const std::string bad :
       {"admin-token-0123456789", "Basic admin-token-0123456789", "BEARER admin-token-0123456789",
        "Bearer admin-token-012345678", "Bearer ADMIN-TOKEN-0123456789", "Bearer", ""}) {
    SCOPED_TRACE(bad);
    absl::StatusOr<Role> r = role(bad);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated);
    EXPECT_EQ(r.status().message().find("0123456789"), std::string::npos) << r.status();
  }
  EXPECT_EQ(auth->Authenticate(nullptr).status().code(), absl::StatusCode::kUnauthenticated);
  // Without tokens authentication is off: every caller is an admin.
  EXPECT_EQ(*TokenAuth().Authenticate(nullptr), Role::kAdmin);
}

TEST_F(TokenAuthTest, ReadersAreRefusedWhatNeedsAnAdminSayingWhy) {
  EXPECT_TRUE(TokenAuth::Authorize(Role::kAdmin, Role::kAdmin, "Enroll").ok());
  EXPECT_TRUE(TokenAuth::Authorize(Role::kAdmin, Role::kReader, "Verify").ok());
  EXPECT_TRUE(TokenAuth::Authorize(Role::kReader, Role::kReader, "Verify").ok());
  const absl::Status refused = TokenAuth::Authorize(Role::kReader, Role::kAdmin, "ActivateModel");
  EXPECT_EQ(refused.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(refused.message(), "ActivateModel needs the admin role; this token is a reader");
}

}  // namespace
}  // namespace srn
