// srn-server refuses to start, with a reason and a non-zero exit, when it cannot serve safely.

#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "base/file.h"
#include "tests/client/e2e_fixture.h"

namespace srn::testing {
namespace {

using ::testing::HasSubstr;

class ServerStartup : public EndToEndTest {
 protected:
  // Runs srn-server to completion (it should not get as far as serving).
  ProcessResult RunServer(const std::vector<std::string>& flags,
                          const std::vector<std::string>& env = CleanEnvironment()) {
    std::vector<std::string> argv = {SRN_SERVER_BINARY, "--metrics_listen=127.0.0.1:0"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    return RunProcess(argv, env, /*timeout_seconds=*/15);
  }
};

// --help is an answer, not an error: exit 0, the tool's own flags, no source or build paths.
TEST_F(ServerStartup, HelpExitsZeroWithoutBuildPaths) {
  for (const char* flag : {"--help", "-helpshort"}) {
    const ProcessResult server = RunServer({flag});
    EXPECT_EQ(server.exit_code, 0) << flag << ": " << server.err;
    EXPECT_THAT(server.out, HasSubstr("  --weights (default")) << flag;
    const ProcessResult client = RunSrnctl({flag}, CleanEnvironment());
    EXPECT_EQ(client.exit_code, 0) << flag << ": " << client.err;
    EXPECT_THAT(client.out, HasSubstr("  --server (default")) << flag;
    for (const ProcessResult* r : {&server, &client}) {
      EXPECT_THAT(r->out, ::testing::Not(HasSubstr("Flags from"))) << flag;
      EXPECT_THAT(r->out, ::testing::Not(HasSubstr(".cc"))) << flag;
    }
  }
}

TEST_F(ServerStartup, MissingWeightsFile) {
  const std::string missing = dir_.File("no-such-model.srnw");
  ProcessResult r =
      RunServer({"--listen=127.0.0.1:0", "--store=:memory:", absl::StrCat("--weights=", missing)});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("srn-server: cannot load model: "));
  EXPECT_THAT(r.err, HasSubstr(missing));
}

TEST_F(ServerStartup, CorruptWeightsFile) {
  const std::string corrupt = dir_.File("corrupt.srnw");
  ASSERT_TRUE(WriteFile(corrupt, "this is not a weights file, just some bytes of text\n"));
  ProcessResult r =
      RunServer({"--listen=127.0.0.1:0", "--store=:memory:", absl::StrCat("--weights=", corrupt)});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("srn-server: cannot load model: "));
  EXPECT_THAT(r.err, HasSubstr(corrupt));

  // A real model file with one byte flipped in the middle: the checksum catches it.
  absl::StatusOr<std::string> bytes = ReadFileToString(model_path_);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  std::string flipped = *bytes;
  flipped[flipped.size() / 2] ^= 0x01;
  ASSERT_TRUE(WriteFile(corrupt, flipped));
  r = RunServer({"--listen=127.0.0.1:0", "--store=:memory:", absl::StrCat("--weights=", corrupt)});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("cannot load model: "));
}

// A damaged active model version must not stop every restart (a crash loop under Kubernetes):
// the newest version that loads serves, the metric an alert watches says so, and ListModels
// names the damaged version.
TEST_F(ServerStartup, CorruptActiveModelVersionFallsBackToTheNewestGoodOne) {
  const std::string models = dir_.File("models");
  ASSERT_TRUE(std::filesystem::create_directory(models));
  // A second model dropped into the directory becomes version 2 when the server starts.
  ASSERT_TRUE(WriteSignatureModel(models + "/dropped.srnw", features_, 77).ok());
  {
    std::unique_ptr<ServerProcess> server = StartServer(":memory:", {"--model_dir=" + models});
    ASSERT_NE(server, nullptr);
    const ProcessResult activated = Ctl(*server, {"activate", "2"});
    ASSERT_EQ(activated.exit_code, 0) << activated.err;
    double seconds = 0;
    EXPECT_EQ(server->Terminate(30, &seconds), 0);
  }
  ASSERT_TRUE(WriteFile(models + "/v2.srnw", "damaged on disk\n"));

  std::unique_ptr<ServerProcess> server = StartServer(":memory:", {"--model_dir=" + models});
  ASSERT_NE(server, nullptr);
  EXPECT_THAT(server->Log(), HasSubstr("WARNING: the active model version 2 of " + models +
                                       " does not load"));
  EXPECT_THAT(server->Log(), HasSubstr("serving version 1, the newest that does"));
  ProcessResult r = Ctl(*server, {"health"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  r = Ctl(*server, {"models"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("    unusable: "));
  EXPECT_THAT(r.out, HasSubstr("served instead of the active version"));
  absl::StatusOr<std::string> metrics = HttpGet(server->metrics_port(), "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(MetricValue(*metrics, "srn_model_fallback", {}), 1.0);
  // Activating a version that loads ends the fallback.
  r = Ctl(*server, {"activate", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  metrics = HttpGet(server->metrics_port(), "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(MetricValue(*metrics, "srn_model_fallback", {}), 0.0);
}

TEST_F(ServerStartup, StorePathIsADirectory) {
  const std::string store = dir_.File("store-dir");
  ASSERT_TRUE(std::filesystem::create_directory(store));
  ProcessResult r = RunServer({"--listen=127.0.0.1:0", absl::StrCat("--store=", store),
                               absl::StrCat("--weights=", model_path_)});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("srn-server: cannot use the store ", store)));
}

TEST_F(ServerStartup, NonLoopbackAddressNeedsTokens) {
  ProcessResult r = RunServer(
      {"--listen=0.0.0.0:0", "--store=:memory:", absl::StrCat("--weights=", model_path_)});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("refusing to listen on 0.0.0.0:0 without authentication"));

  // With a token it starts (and is stopped again at once).
  std::vector<std::string> env = CleanEnvironment();
  env.push_back("SRN_ADMIN_TOKEN=admin-token-0123456789abcdef");
  std::unique_ptr<ServerProcess> server = StartServer(
      ":memory:", {"--listen=0.0.0.0:0", "--metrics_listen=", "--drain_seconds=0"}, env);
  ASSERT_NE(server, nullptr);
  double seconds = 0;
  EXPECT_EQ(server->Terminate(10, &seconds), 0) << server->Log();
}

TEST_F(ServerStartup, NonLoopbackMetricsNeedTokensOrMetricsPublic) {
  ProcessResult r = RunServer({"--listen=127.0.0.1:0", "--metrics_listen=0.0.0.0:0",
                               "--store=:memory:", absl::StrCat("--weights=", model_path_)});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("refusing to serve metrics on 0.0.0.0:0 without authentication"));
  EXPECT_THAT(r.err, HasSubstr("--metrics_public"));

  std::unique_ptr<ServerProcess> server = StartServer(
      ":memory:", {"--metrics_listen=0.0.0.0:0", "--metrics_public", "--drain_seconds=0"});
  ASSERT_NE(server, nullptr);
  double seconds = 0;
  EXPECT_EQ(server->Terminate(10, &seconds), 0) << server->Log();
}

TEST_F(ServerStartup, TokensFileOthersMayReadIsRefused) {
  const std::string tokens = dir_.File("tokens");
  ASSERT_TRUE(WriteFile(tokens, "admin admin-token-0123456789abcdef\n"));
  ASSERT_EQ(::chmod(tokens.c_str(), 0644), 0);
  ProcessResult r =
      RunServer({"--listen=127.0.0.1:0", "--store=:memory:", absl::StrCat("--tokens_file=", tokens),
                 absl::StrCat("--weights=", model_path_)});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("run chmod 600 ", tokens)));
}

TEST_F(ServerStartup, BadFlags) {
  ProcessResult r = RunServer({"--listen=127.0.0.1:0", "--store=:memory:",
                               absl::StrCat("--weights=", model_path_), "--default_fusion=median"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("--default_fusion must be max, mean or top-k-mean"));
  ASSERT_TRUE(WriteFile(dir_.File("short.tokens"), "admin short\n"));
  ASSERT_EQ(::chmod(dir_.File("short.tokens").c_str(), 0600), 0);
  r = RunServer({"--listen=127.0.0.1:0",
                 "--store=:memory:", absl::StrCat("--weights=", model_path_),
                 absl::StrCat("--tokens_file=", dir_.File("short.tokens"))});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("16"));
}

}  // namespace
}  // namespace srn::testing
