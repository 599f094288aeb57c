// srn-server on a PostgreSQL store shared by two servers, end to end with a real PostgreSQL server
// the test starts (tests/testing/scratch_postgres.h): what one server enrolled, a server started
// later serves; bad URIs and unsupported combinations are refused, never echoing a password.

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/e2e_fixture.h"
#include "tests/testing/scratch_postgres.h"

namespace srn::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

class PostgresEndToEnd : public EndToEndTest {
 protected:
  void SetUp() override {
    EndToEndTest::SetUp();
    if (HasFatalFailure()) return;
    std::string why;
    postgres_ = ScratchPostgres::Start(&why);
    if (postgres_ != nullptr) uri_ = postgres_->NewDatabase(&why);
    if (uri_.empty()) {
      if (PostgresRequired()) FAIL() << why;
      GTEST_SKIP() << "PostgreSQL store not tested: " << why;
    }
  }

  ProcessResult RunServer(const std::vector<std::string>& flags) {
    std::vector<std::string> argv = {SRN_SERVER_BINARY, "--listen=127.0.0.1:0",
                                     "--metrics_listen=127.0.0.1:0",
                                     absl::StrCat("--weights=", model_path_)};
    argv.insert(argv.end(), flags.begin(), flags.end());
    return RunProcess(argv, CleanEnvironment(), /*timeout_seconds=*/30);
  }

  std::unique_ptr<ScratchPostgres> postgres_;
  std::string uri_;
};

TEST_F(PostgresEndToEnd, WhatOneServerEnrolledAServerStartedLaterServes) {
  {
    std::unique_ptr<ServerProcess> a = StartServer(uri_);
    ASSERT_NE(a, nullptr);
    ProcessResult r = Ctl(*a, {"enroll", "--subject=alice", Svc(0), Svc(1)});
    ASSERT_EQ(r.exit_code, 0) << r.err << a->Log();
    r = Ctl(*a, {"enroll", "--subject=bob", "--threshold=0.75", Svc(2)});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = Ctl(*a, {"delete", "--subject=bob"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    double seconds = 0;
    EXPECT_EQ(a->Terminate(/*timeout_seconds=*/30, &seconds), 0) << a->Log();
  }
  std::unique_ptr<ServerProcess> b = StartServer(uri_);
  ASSERT_NE(b, nullptr);
  EXPECT_THAT(b->Log(), HasSubstr("; 1 subjects"));
  ProcessResult r = Ctl(*b, {"verify", "--subject=alice", "--fusion=max", Svc(0)});
  ASSERT_EQ(r.exit_code, 0) << r.err << b->Log();
  const std::vector<double> scores = NumbersAfter(r.out, "reference scores: ");
  ASSERT_EQ(scores.size(), 2u) << r.out;
  EXPECT_NEAR(scores[0], Similarity(0, 0), 1e-4);
  EXPECT_NEAR(scores[1], Similarity(0, 1), 1e-4);
  r = Ctl(*b, {"get", "--subject=bob"});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.err, StartsWith("srnctl: NOT_FOUND: "));
}

TEST_F(PostgresEndToEnd, UnreachableOrUnsupportedStoresAreRefusedWithoutThePassword) {
  // Nothing listens on this port (the scratch server's, plus one, is free enough: the refusal
  // is what is checked, whatever the reason).
  const std::string unreachable =
      absl::StrCat("postgresql://srn:s3cret-pw@127.0.0.1:", postgres_->port() + 1, "/nowhere");
  ProcessResult r = RunServer({absl::StrCat("--store=", unreachable)});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("cannot connect to the subject store postgresql://127.0.0.1:"));
  EXPECT_THAT(r.err, Not(HasSubstr("s3cret-pw")));

  r = RunServer({"--store=postgresql://127.0.0.1:5432/db?sslmode=bogus"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("sslmode"));

  r = RunServer({absl::StrCat("--store=", uri_), absl::StrCat("--model_dir=", dir_.File("m"))});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("--model_dir (the model registry and training jobs) needs a "
                               "SQLite store for now"));
}

}  // namespace
}  // namespace srn::testing
