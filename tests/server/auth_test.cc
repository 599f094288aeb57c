#include "server/auth.h"

#include <sys/stat.h>

#include <string>

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

}  // namespace
}  // namespace srn
