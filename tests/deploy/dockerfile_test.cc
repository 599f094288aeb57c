// Dockerfile, .dockerignore and docker-compose.yml: the image is built with the one dependency
// script and the README's cmake commands, and everything its runtime stage copies, runs and
// health-checks exists in this build and accepts the flags it is given.

#include <fnmatch.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "tests/client/e2e_harness.h"
#include "tests/deploy/deploy_testing.h"

namespace srn::testing {
namespace {

struct Instruction {
  std::string keyword;  // upper case
  std::string rest;
};

struct Stage {
  std::string name;
  std::vector<Instruction> instructions;
};

// Splits a Dockerfile into stages of instructions (continuation lines joined, comments dropped).
std::vector<Stage> ParseDockerfile(const std::string& text) {
  std::vector<Stage> stages;
  std::string pending;
  auto flush = [&] {
    const std::string line(absl::StripAsciiWhitespace(pending));
    pending.clear();
    if (line.empty()) return;
    const size_t space = line.find_first_of(" \t");
    Instruction ins{absl::AsciiStrToUpper(line.substr(0, space)),
                    space == std::string::npos
                        ? ""
                        : std::string(absl::StripAsciiWhitespace(line.substr(space)))};
    if (ins.keyword == "FROM") {
      std::vector<std::string> words = absl::StrSplit(ins.rest, ' ', absl::SkipEmpty());
      stages.push_back({words.size() == 3 ? words[2] : "", {}});
    }
    if (!stages.empty()) stages.back().instructions.push_back(ins);
  };
  for (const std::string& raw : Lines(text)) {
    const std::string line(absl::StripAsciiWhitespace(raw));
    if (line.empty() || line[0] == '#') continue;  // also inside a continued instruction
    if (absl::EndsWith(line, "\\")) {
      pending += line.substr(0, line.size() - 1) + " ";
    } else {
      pending += line;
      flush();
    }
  }
  flush();
  return stages;
}

struct Copy {
  std::string from;  // stage, or "" for the build context
  std::vector<std::string> sources;
  std::string destination;
};

std::vector<Copy> CopiesOf(const Stage& stage) {
  std::vector<Copy> copies;
  for (const Instruction& ins : stage.instructions) {
    if (ins.keyword != "COPY") continue;
    Copy copy;
    std::vector<std::string> words = absl::StrSplit(ins.rest, ' ', absl::SkipEmpty());
    std::vector<std::string> paths;
    for (const std::string& w : words) {
      if (absl::StartsWith(w, "--from=")) {
        copy.from = w.substr(7);
      } else if (!absl::StartsWith(w, "--")) {
        paths.push_back(w);
      }
    }
    if (paths.size() < 2) continue;
    copy.destination = paths.back();
    paths.pop_back();
    copy.sources = paths;
    copies.push_back(copy);
  }
  return copies;
}

std::vector<std::string> RunsOf(const Stage& stage) {
  std::vector<std::string> runs;
  for (const Instruction& ins : stage.instructions) {
    if (ins.keyword == "RUN") runs.push_back(ins.rest);
  }
  return runs;
}

std::string Only(const Stage& stage, const std::string& keyword) {
  std::string found;
  for (const Instruction& ins : stage.instructions) {
    if (ins.keyword == keyword) found = ins.rest;  // the last one counts
  }
  return found;
}

std::vector<std::string> JsonArgv(const std::string& text) {
  std::vector<std::string> argv;
  absl::StatusOr<google::protobuf::ListValue> list = ParseJsonArray(text);
  EXPECT_TRUE(list.ok()) << list.status();
  if (!list.ok()) return argv;
  for (const auto& v : list->values()) argv.push_back(v.string_value());
  return argv;
}

int PortOf(const std::string& address) {
  int port = -1;
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port)) return -1;
  return port;
}

class DockerfileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::string> text = ReadFileText(SourcePath("Dockerfile"));
    ASSERT_TRUE(text.ok()) << text.status();
    stages_ = ParseDockerfile(*text);
    ASSERT_EQ(stages_.size(), 2u) << "a build stage and a runtime stage";
    build_ = &stages_[0];
    runtime_ = &stages_[1];
    ASSERT_FALSE(build_->name.empty()) << "FROM ... AS <name>";
    // The source tree inside the build stage: COPY . <dir>.
    for (const Copy& copy : CopiesOf(*build_)) {
      if (copy.sources == std::vector<std::string>{"."}) src_dir_ = copy.destination;
    }
    ASSERT_FALSE(src_dir_.empty()) << "the build stage copies the tree with COPY . <dir>";
    entrypoint_ = JsonArgv(Only(*runtime_, "ENTRYPOINT"));
    const std::string health = Only(*runtime_, "HEALTHCHECK");
    const size_t cmd = health.find("CMD ");
    ASSERT_NE(cmd, std::string::npos) << "HEALTHCHECK ... CMD [...]";
    healthcheck_ = JsonArgv(health.substr(cmd + 4));
    ASSERT_FALSE(entrypoint_.empty());
    ASSERT_FALSE(healthcheck_.empty());
    for (const std::string& arg : entrypoint_) {
      if (auto flag = ParseFlag(arg)) entry_flags_[flag->first] = flag->second;
    }
  }

  // Where the runtime stage's `path` comes from: a build-tree file, a source file, or "".
  std::string HostSourceOf(const std::string& path) const {
    for (const Copy& copy : CopiesOf(*runtime_)) {
      if (copy.sources.size() != 1 || copy.destination != path) continue;
      const std::string& source = copy.sources[0];
      if (copy.from == build_->name) {
        const std::string build_prefix = src_dir_ + "/build/";
        if (!absl::StartsWith(source, build_prefix)) return "";
        return BuildDir() + "/" + source.substr(build_prefix.size());
      }
      return copy.from.empty() ? SourcePath(source) : "";
    }
    return "";
  }

  std::vector<Stage> stages_;
  const Stage* build_ = nullptr;
  const Stage* runtime_ = nullptr;
  std::string src_dir_;
  std::vector<std::string> entrypoint_;
  std::vector<std::string> healthcheck_;
  std::map<std::string, std::string> entry_flags_;
};

TEST_F(DockerfileTest, BothStagesInstallFromTheOneDependencyScript) {
  EXPECT_TRUE(absl::StartsWith(build_->instructions[0].rest, "debian:bookworm"));
  EXPECT_TRUE(absl::StartsWith(runtime_->instructions[0].rest, "debian:bookworm"));
  auto runs_with = [](const Stage& stage, const std::string& needle) {
    for (const std::string& run : RunsOf(stage)) {
      if (absl::StrContains(run, needle)) return true;
    }
    return false;
  };
  EXPECT_TRUE(runs_with(*build_, "deploy/install-deps.sh build"));
  EXPECT_TRUE(runs_with(*runtime_, "install-deps.sh runtime"));
  EXPECT_FALSE(runs_with(*build_, "apt-get install")) << "packages come from install-deps.sh only";
  EXPECT_FALSE(runs_with(*runtime_, "apt-get install"))
      << "packages come from install-deps.sh only";
  // Those groups exist in the script.
  auto script = ReadFileText(SourcePath("deploy/install-deps.sh"));
  ASSERT_TRUE(script.ok());
  EXPECT_TRUE(absl::StrContains(*script, "\n    build) ")) << "no build group";
  EXPECT_TRUE(absl::StrContains(*script, "\n    runtime) ")) << "no runtime group";
  // The README's configure command.
  auto readme = ReadFileText(SourcePath("README.md"));
  ASSERT_TRUE(readme.ok());
  const std::string configure = "cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release";
  EXPECT_TRUE(absl::StrContains(*readme, configure));
  EXPECT_TRUE(runs_with(*build_, configure));
}

TEST_F(DockerfileTest, EntrypointAndHealthCheckBinariesExistInTheBuild) {
  for (const std::vector<std::string>* command : {&entrypoint_, &healthcheck_}) {
    const std::string host = HostSourceOf((*command)[0]);
    ASSERT_FALSE(host.empty()) << (*command)[0]
                               << " is not copied from the build stage's build tree";
    EXPECT_EQ(access(host.c_str(), X_OK), 0) << host << " (for " << (*command)[0] << ") is missing";
  }
  EXPECT_EQ(std::filesystem::path(entrypoint_[0]).filename(), "srn-server");
  EXPECT_EQ(std::filesystem::path(healthcheck_[0]).filename(), "srnctl");
  // The bundled model, where srn-server looks: <bin>/../share/srn/models/default.srnw.
  const std::string model = (std::filesystem::path(entrypoint_[0]).parent_path().parent_path() /
                             "share/srn/models/default.srnw")
                                .string();
  const std::string host_model = HostSourceOf(model);
  ASSERT_FALSE(host_model.empty()) << "nothing copied to " << model;
  EXPECT_TRUE(std::filesystem::is_regular_file(host_model)) << host_model;
}

TEST_F(DockerfileTest, CommandsUseOnlyFlagsTheBinariesHave) {
  auto server = FlagsOf(SRN_SERVER_BINARY);
  auto ctl = FlagsOf(SRNCTL_BINARY);
  ASSERT_TRUE(server.ok() && ctl.ok());
  std::vector<std::string> unknown;
  for (size_t i = 1; i < entrypoint_.size(); ++i) {
    auto flag = ParseFlag(entrypoint_[i]);
    if (!flag || server->flags.count(flag->first) == 0)
      unknown.push_back("srn-server " + entrypoint_[i]);
  }
  for (size_t i = 1; i + 1 < healthcheck_.size(); ++i) {
    auto flag = ParseFlag(healthcheck_[i]);
    if (!flag || ctl->flags.count(flag->first) == 0) unknown.push_back("srnctl " + healthcheck_[i]);
  }
  EXPECT_TRUE(unknown.empty()) << "unknown flags: " << absl::StrJoin(unknown, ", ");
  EXPECT_EQ(healthcheck_.back(), "health");
}

TEST_F(DockerfileTest, PortsVolumeAndUserAgreeWithTheFlags) {
  const std::vector<std::string> exposed =
      absl::StrSplit(Only(*runtime_, "EXPOSE"), ' ', absl::SkipEmpty());
  const int grpc = PortOf(entry_flags_["listen"]);
  const int metrics = PortOf(entry_flags_["metrics_listen"]);
  EXPECT_TRUE(absl::StartsWith(entry_flags_["listen"], "0.0.0.0:"));
  EXPECT_TRUE(absl::StartsWith(entry_flags_["metrics_listen"], "0.0.0.0:"));
  EXPECT_EQ(std::count(exposed.begin(), exposed.end(), absl::StrCat(grpc)), 1);
  EXPECT_EQ(std::count(exposed.begin(), exposed.end(), absl::StrCat(metrics)), 1);
  // The health check asks the server's own port.
  for (const std::string& arg : healthcheck_) {
    auto flag = ParseFlag(arg);
    if (flag && flag->first == "server") { EXPECT_EQ(PortOf(flag->second), grpc); }
  }
  // The store (and its lock) on the volume.
  const std::string volume = JsonArgv(Only(*runtime_, "VOLUME")).at(0);
  EXPECT_TRUE(absl::StartsWith(entry_flags_["store"], volume + "/")) << entry_flags_["store"];
  const std::string user = Only(*runtime_, "USER");
  int uid = -1;
  ASSERT_TRUE(absl::SimpleAtoi(user.substr(0, user.find(':')), &uid))
      << "USER " << user << " must be a numeric uid (Kubernetes' runAsNonRoot checks it)";
  EXPECT_GT(uid, 0);
}

// The image's commands, run from this build: the server starts with the ENTRYPOINT's flags
// (paths under a temporary root, loopback ports) and a token in the environment, as the docs
// say to run it, and the HEALTHCHECK command reports SERVING.
TEST_F(DockerfileTest, EntrypointStartsAndHealthCheckPasses) {
  TempDir root;
  std::vector<std::string> flags;
  for (size_t i = 1; i < entrypoint_.size(); ++i) {
    auto flag = ParseFlag(entrypoint_[i]);
    ASSERT_TRUE(flag);
    if (flag->first == "listen" || flag->first == "metrics_listen") continue;
    if (absl::StartsWith(flag->second, "/")) {
      const std::string path = root.path() + flag->second;
      // The image creates its directories (RUN mkdir ... in the runtime stage).
      std::filesystem::create_directories(std::filesystem::path(path).parent_path());
      flags.push_back(absl::StrCat("--", flag->first, "=", path));
    } else {
      flags.push_back(entrypoint_[i]);
    }
  }
  std::vector<std::string> env = CleanEnvironment();
  env.push_back("SRN_ADMIN_TOKEN=docker-test-admin-token");
  auto server = ServerProcess::Start(flags, root.File("server.log"), env);
  ASSERT_TRUE(server.ok()) << server.status();
  std::vector<std::string> check = {SRNCTL_BINARY};
  for (size_t i = 1; i < healthcheck_.size(); ++i) {
    auto flag = ParseFlag(healthcheck_[i]);
    check.push_back(flag && flag->first == "server" ? "--server=" + (*server)->address()
                                                    : healthcheck_[i]);
  }
  bool serving = false;
  ProcessResult last;
  for (int attempt = 0; attempt < 50 && !serving; ++attempt) {
    last = RunProcess(check, CleanEnvironment());
    serving = last.exit_code == 0;
    if (!serving) usleep(100000);
  }
  EXPECT_TRUE(serving) << absl::StrJoin(check, " ") << ": " << last.out << last.err << "\n"
                       << (*server)->Log();
}

// Whether a .dockerignore pattern excludes `path` (or a parent of it).
bool Ignored(const std::vector<std::string>& patterns, const std::string& path) {
  bool ignored = false;
  for (const std::string& raw : patterns) {
    absl::string_view view = raw;
    const bool negate = absl::ConsumePrefix(&view, "!");
    const std::string pattern(view);
    std::string prefix;
    bool match = false;
    for (absl::string_view part : absl::StrSplit(path, '/')) {
      prefix = prefix.empty() ? std::string(part) : prefix + "/" + std::string(part);
      const int flags = absl::StartsWith(pattern, "**/") ? 0 : FNM_PATHNAME;
      const std::string p = absl::StartsWith(pattern, "**/") ? "*" + pattern.substr(2) : pattern;
      match |= fnmatch(p.c_str(), prefix.c_str(), flags) == 0 ||
               (absl::StartsWith(pattern, "**/") &&
                fnmatch(pattern.substr(3).c_str(), prefix.c_str(), 0) == 0);
    }
    if (match) ignored = !negate;
  }
  return ignored;
}

TEST_F(DockerfileTest, DockerignoreKeepsWhatTheBuildCopiesAndDropsBuildTrees) {
  auto text = ReadFileText(SourcePath(".dockerignore"));
  ASSERT_TRUE(text.ok()) << text.status();
  const std::vector<std::string> patterns = FlagFileLines(*text);  // comments and blanks dropped
  for (const Stage* stage : {build_, runtime_}) {
    for (const Copy& copy : CopiesOf(*stage)) {
      if (!copy.from.empty() || copy.sources[0] == ".") continue;
      EXPECT_FALSE(Ignored(patterns, copy.sources[0]))
          << copy.sources[0] << " is copied but ignored";
    }
  }
  for (const char* kept : {"CMakeLists.txt", "base/file.cc", "model/data/series.cc",
                           "server/main.cc", "deploy/install-deps.sh"}) {
    EXPECT_FALSE(Ignored(patterns, kept)) << kept;
  }
  for (const char* dropped : {"build/server/srn-server", "build-deploy/CMakeCache.txt", ".git/HEAD",
                              "srn-store.db", "tests/x/srn-store.db-wal"}) {
    EXPECT_TRUE(Ignored(patterns, dropped)) << dropped;
  }
}

// docker-compose.yml (one server) and docker-compose.replicated.yml (replicas and a trainer on
// PostgreSQL).
class ComposeFileTest : public DockerfileTest,
                        public ::testing::WithParamInterface<std::string> {};

TEST_P(ComposeFileTest, RunsThisImageWithItsPortsAndFiles) {
  auto compose = ReadFileText(SourcePath(GetParam()));
  ASSERT_TRUE(compose.ok()) << compose.status();
  auto server = FlagsOf(SRN_SERVER_BINARY);
  ASSERT_TRUE(server.ok());
  // Published container ports are the image's.
  for (const std::string& line : Lines(*compose)) {
    const std::string s(absl::StripAsciiWhitespace(line));
    // - "127.0.0.1:50051:50051" in the srn service; Prometheus' and Grafana's are theirs.
    if (absl::StrContains(s, ":50051\"") || absl::StrContains(s, ":9464\"")) {
      const int port = PortOf(std::string(absl::StripSuffix(s, "\"")));
      EXPECT_TRUE(port == PortOf(entry_flags_["listen"]) ||
                  port == PortOf(entry_flags_["metrics_listen"]))
          << s;
    }
    // Every host file or directory mounted into a container exists.
    if (absl::StartsWith(s, "- ./")) {
      const std::string host = s.substr(4, s.find(':') - 4);
      EXPECT_TRUE(std::filesystem::exists(SourcePath(host))) << s;
    }
    // docker stop waits longer than the server's default drain + grace.
    absl::string_view rest = s;
    if (absl::ConsumePrefix(&rest, "stop_grace_period: ")) {
      double seconds = 0;
      ASSERT_TRUE(absl::SimpleAtod(absl::StripSuffix(rest, "s"), &seconds)) << s;
      double drain = 0, grace = 0;
      ASSERT_TRUE(absl::SimpleAtod(server->defaults["drain_seconds"], &drain));
      ASSERT_TRUE(absl::SimpleAtod(server->defaults["grace_seconds"], &grace));
      EXPECT_GT(seconds, drain + grace);
    }
  }
  EXPECT_TRUE(absl::StrContains(*compose, "build: .")) << "the srn service builds this Dockerfile";
}

INSTANTIATE_TEST_SUITE_P(Files, ComposeFileTest,
                         ::testing::Values("docker-compose.yml", "docker-compose.replicated.yml"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param == "docker-compose.yml" ? "Single" : "Replicated";
                         });

// The services of a compose file that run the image ("<<: *srn"), each with its command's
// arguments (a flow list of quoted strings, possibly over several lines).
std::map<std::string, std::vector<std::string>> SrnServiceCommands(const std::string& compose) {
  std::map<std::string, std::vector<std::string>> commands;
  std::string service, command;
  bool in_command = false;
  for (const std::string& line : Lines(compose)) {
    if (line.size() > 3 && absl::StartsWith(line, "  ") && line[2] != ' ' && line[2] != '-' &&
        absl::EndsWith(line, ":")) {
      service = line.substr(2, line.size() - 3);
    }
    if (absl::StrContains(line, "<<: *srn")) commands[service];
    if (absl::StartsWith(absl::StripLeadingAsciiWhitespace(line), "command: [")) in_command = true;
    if (!in_command) continue;
    command += line;
    if (!absl::StrContains(line, "]")) continue;
    in_command = false;
    std::vector<std::string>& args = commands[service];
    for (absl::string_view rest = command; ;) {
      const size_t open = rest.find('"');
      if (open == absl::string_view::npos) break;
      const size_t close = rest.find('"', open + 1);
      args.push_back(std::string(rest.substr(open + 1, close - open - 1)));
      rest.remove_prefix(close + 1);
    }
    command.clear();
  }
  return commands;
}

TEST_F(DockerfileTest, ReplicatedComposeRunsReplicasAndATrainerOnPostgresAllScraped) {
  auto compose = ReadFileText(SourcePath("docker-compose.replicated.yml"));
  auto prometheus = ReadFileText(SourcePath("deploy/prometheus/prometheus-replicated.yml"));
  ASSERT_TRUE(compose.ok() && prometheus.ok());
  auto server = FlagsOf(SRN_SERVER_BINARY);
  ASSERT_TRUE(server.ok());
  const std::map<std::string, std::vector<std::string>> services = SrnServiceCommands(*compose);
  ASSERT_GE(services.size(), 3u) << *compose;
  int trainers = 0;
  for (const auto& [name, args] : services) {
    // The image's flags, then the command's: the last one wins.
    std::map<std::string, std::string> flags = entry_flags_;
    for (const std::string& arg : args) {
      auto flag = ParseFlag(arg);
      ASSERT_TRUE(flag.has_value()) << name << ": " << arg;
      EXPECT_EQ(server->flags.count(flag->first), 1u) << name << ": srn-server has no " << arg;
      flags[flag->first] = flag->second;
    }
    EXPECT_TRUE(absl::StartsWith(flags["store"], "postgresql://")) << name;
    EXPECT_EQ(flags["model_dir"], "") << name << ": the registry is in the database";
    if (flags["role"] == "trainer") {
      ++trainers;
      EXPECT_FALSE(flags["data_dir"].empty()) << name << ": a trainer reads its datasets";
    } else {
      EXPECT_EQ(flags["data_dir"], "") << name << ": a replica leaves datasets to the trainer";
    }
    EXPECT_TRUE(absl::StrContains(*prometheus, absl::StrCat("\"", name, ":9464\"")))
        << name << " is not scraped";
  }
  EXPECT_EQ(trainers, 1);
  EXPECT_TRUE(absl::StrContains(*prometheus, "job_name: srn")) << "the rules select job=\"srn\"";
}

}  // namespace
}  // namespace srn::testing
