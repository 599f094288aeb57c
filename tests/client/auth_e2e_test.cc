// Bearer-token authentication and roles, end to end: srn-server with a tokens file, srnctl with
// tokens from --token_file or $SRN_TOKEN.

#include <sys/stat.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/e2e_fixture.h"

namespace srn::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr char kAdminToken[] = "admin-token-0123456789abcdef";
constexpr char kReaderToken[] = "reader-token-0123456789abcdef";
constexpr char kWrongToken[] = "wrong-token-0123456789abcdef";

std::vector<std::string> WithToken(const std::string& token) {
  std::vector<std::string> env = CleanEnvironment();
  env.push_back(absl::StrCat("SRN_TOKEN=", token));
  return env;
}

class AuthEndToEnd : public EndToEndTest {
 protected:
  void SetUp() override {
    EndToEndTest::SetUp();
    if (HasFatalFailure()) return;
    tokens_ = dir_.File("tokens");
    ASSERT_TRUE(WriteFile(tokens_, absl::StrCat("# roles for the test\nadmin ", kAdminToken,
                                                "\n\nreader ", kReaderToken, "\n")));
  ASSERT_EQ(::chmod(tokens_.c_str(), 0600), 0);  // the server refuses a file others may read
    admin_file_ = dir_.File("admin.token");
    ASSERT_TRUE(WriteFile(admin_file_, absl::StrCat(kAdminToken, "\n")));  // newline is trimmed
    wrong_file_ = dir_.File("wrong.token");
    ASSERT_TRUE(WriteFile(wrong_file_, kWrongToken));
  }

  std::string tokens_, admin_file_, wrong_file_;
};

TEST_F(AuthEndToEnd, RolesAndTokens) {
  std::unique_ptr<ServerProcess> server =
      StartServer(":memory:", {absl::StrCat("--tokens_file=", tokens_)});
  ASSERT_NE(server, nullptr);
  // Health is for load balancers and needs no token.
  ASSERT_TRUE(WaitUntilServing({absl::StrCat("--server=", server->address())}, CleanEnvironment()))
      << server->Log();

  ProcessResult r = Ctl(*server, {"model-info"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, StartsWith("srnctl: UNAUTHENTICATED: "));

  r = Ctl(*server, {absl::StrCat("--token_file=", wrong_file_), "model-info"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, StartsWith("srnctl: UNAUTHENTICATED: "));
  EXPECT_THAT(r.err, Not(HasSubstr(kWrongToken)));  // never echoed

  r = Ctl(*server, {"enroll", "--subject=alice", Svc(0)}, WithToken(kReaderToken));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, StartsWith("srnctl: PERMISSION_DENIED: "));

  r = Ctl(*server, {absl::StrCat("--token_file=", admin_file_), "enroll", "--subject=alice", Svc(0),
                    Svc(1)});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("enrolled alice\t2 references"));

  r = Ctl(*server, {"verify", "--subject=alice", Svc(1)}, WithToken(kReaderToken));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(" alice: score "));
  r = Ctl(*server, {"list"}, WithToken(kReaderToken));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("alice\t"));

  r = Ctl(*server, {"delete", "--subject=alice"}, WithToken(kReaderToken));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, StartsWith("srnctl: PERMISSION_DENIED: "));
  // --token_file wins over $SRN_TOKEN.
  r = Ctl(*server, {absl::StrCat("--token_file=", admin_file_), "delete", "--subject=alice"},
          WithToken(kReaderToken));
  EXPECT_EQ(r.exit_code, 0) << r.err;

  // Client-side token problems are usage errors, reported before any call.
  ASSERT_TRUE(WriteFile(dir_.File("empty.token"), "\n"));
  r = Ctl(*server, {absl::StrCat("--token_file=", dir_.File("empty.token")), "list"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("is empty"));
  r = Ctl(*server, {absl::StrCat("--token_file=", dir_.File("absent.token")), "list"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, StartsWith("srnctl: NOT_FOUND: "));
}

TEST_F(AuthEndToEnd, TokensFromTheServerEnvironment) {
  std::vector<std::string> env = CleanEnvironment();
  env.push_back(absl::StrCat("SRN_READER_TOKEN=", kReaderToken));
  std::unique_ptr<ServerProcess> server = StartServer(":memory:", {}, env);
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(Ctl(*server, {"model-info"}).exit_code, 1);
  EXPECT_EQ(Ctl(*server, {"model-info"}, WithToken(kReaderToken)).exit_code, 0);
  ProcessResult r = Ctl(*server, {"enroll", "--subject=alice", Svc(0)}, WithToken(kReaderToken));
  EXPECT_THAT(r.err, StartsWith("srnctl: PERMISSION_DENIED: "));
}

}  // namespace
}  // namespace srn::testing
