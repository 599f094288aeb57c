// deploy/prometheus and deploy/grafana: promtool accepts the configuration and rules, the rules'
// unit tests pass and cover every alert both firing and quiet, the dashboard's queries parse,
// and every metric name used anywhere exists on a real srn-server's /metrics page.

#include <map>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "tests/client/e2e_harness.h"
#include "tests/deploy/deploy_testing.h"

namespace srn::testing {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

const std::optional<std::string>& Promtool() {
  static const auto* promtool = new std::optional<std::string>(FindTool("promtool", "PROMTOOL"));
  return *promtool;
}

#define SRN_REQUIRE_PROMTOOL()                                                                 \
  if (!Promtool()) {                                                                           \
    GTEST_SKIP() << "promtool not found on PATH (deploy/install-deps.sh deploy installs it, "  \
                    "Debian package prometheus; $PROMTOOL names another)";                     \
  }

const std::string kRules = "deploy/prometheus/srn-rules.yml";
const std::string kRuleTests = "deploy/prometheus/srn-rules.test.yml";
const std::string kDashboard = "deploy/grafana/dashboards/srn.json";

ProcessResult Promtool(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {*Promtool()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProcess(argv, CleanEnvironment(), 60);
}

TEST(PrometheusTest, ConfigIsValid) {
  SRN_REQUIRE_PROMTOOL();
  ProcessResult r = Promtool({"check", "config", SourcePath("deploy/prometheus/prometheus.yml")});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST(PrometheusTest, RulesAreValid) {
  SRN_REQUIRE_PROMTOOL();
  ProcessResult r = Promtool({"check", "rules", SourcePath(kRules)});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST(PrometheusTest, RuleUnitTestsPass) {
  SRN_REQUIRE_PROMTOOL();
  ProcessResult r = Promtool({"test", "rules", SourcePath(kRuleTests)});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(r.out + r.err, "SUCCESS")) << r.out << r.err;
}

// The names after "<key>: " on lines of `text`.
std::vector<std::string> ValuesOf(const std::string& text, const std::string& key) {
  std::vector<std::string> values;
  for (const std::string& line : Lines(text)) {
    absl::string_view rest = absl::StripLeadingAsciiWhitespace(line);
    absl::ConsumePrefix(&rest, "- ");
    if (absl::ConsumePrefix(&rest, key + ": "))
      values.push_back(std::string(absl::StripAsciiWhitespace(rest)));
  }
  return values;
}

TEST(PrometheusTest, EveryAlertIsTestedFiringAndQuiet) {
  auto rules = ReadFileText(SourcePath(kRules));
  auto tests = ReadFileText(SourcePath(kRuleTests));
  ASSERT_TRUE(rules.ok() && tests.ok());
  const std::vector<std::string> alerts = ValuesOf(*rules, "alert");
  // The issue's list: error ratio, p99 latency, no model, store commit latency, training failures.
  for (const char* required : {"SrnHighErrorRatio", "SrnHighLatencyP99", "SrnNoModelLoaded",
                               "SrnStoreCommitSlow", "SrnTrainingJobFailed"}) {
    EXPECT_EQ(std::count(alerts.begin(), alerts.end(), required), 1) << required;
  }
  // In the test file, "alertname: X" is followed by "exp_alerts: []" (quiet) or "exp_alerts:"
  // and a list (firing).
  std::map<std::string, std::pair<int, int>> seen;  // alert -> (quiet, firing)
  const std::vector<std::string> lines = Lines(*tests);
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    absl::string_view name = absl::StripAsciiWhitespace(lines[i]);
    if (!absl::ConsumePrefix(&name, "alertname: ")) continue;
    const std::string line(name);
    const std::string next(absl::StripAsciiWhitespace(lines[i + 1]));
    if (absl::StartsWith(next, "exp_alerts: []")) {
      ++seen[line].first;
    } else if (next == "exp_alerts:") {
      ++seen[line].second;
    }
  }
  for (const std::string& alert : alerts) {
    EXPECT_GE(seen[alert].first, 1) << alert << " has no test where it stays quiet";
    EXPECT_GE(seen[alert].second, 1) << alert << " has no test where it fires";
  }
}

// Every "expr" of the dashboard's panels.
std::vector<std::string> DashboardQueries(const Struct& dashboard) {
  std::vector<std::string> queries;
  for (const Value* panel : ListAt(dashboard, {"panels"})) {
    for (const Value* target : ListAt(panel->struct_value(), {"targets"})) {
      queries.push_back(StringAt(target->struct_value(), {"expr"}));
    }
  }
  return queries;
}

TEST(GrafanaTest, DashboardQueriesParse) {
  SRN_REQUIRE_PROMTOOL();
  auto text = ReadFileText(SourcePath(kDashboard));
  ASSERT_TRUE(text.ok()) << text.status();
  auto objects = ParseJsonObjects(*text);
  ASSERT_TRUE(objects.ok()) << objects.status();
  ASSERT_EQ(objects->size(), 1u);
  const std::vector<std::string> queries = DashboardQueries((*objects)[0]);
  ASSERT_GE(queries.size(), 10u);
  // promtool parses PromQL in rule files: one recording rule per query, with the dashboard's
  // variables replaced by what they match.
  std::string rules = "groups:\n- name: dashboard\n  rules:\n";
  for (size_t i = 0; i < queries.size(); ++i) {
    ASSERT_FALSE(queries[i].empty()) << "panel target " << i << " has no expr";
    const std::string expr = absl::StrReplaceAll(queries[i], {{"$instance", ".*"}, {"'", "''"}});
    absl::StrAppend(&rules, "  - record: dashboard_query_", i, "\n    expr: '", expr, "'\n");
  }
  TempDir dir;
  ASSERT_TRUE(WriteFile(dir.File("dashboard-rules.yml"), rules));
  ProcessResult r = Promtool({"check", "rules", dir.File("dashboard-rules.yml")});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << "\n" << rules;
}

// Names of metric families and labels on a real /metrics page.
struct Exposition {
  std::set<std::string> samples;  // every sample name (with _bucket/_sum/_count)
  std::set<std::string> labels;
};

Exposition ParseExposition(const std::string& text) {
  Exposition e;
  static const std::regex kLabel(R"(([A-Za-z_][A-Za-z0-9_]*)=")");
  for (const std::string& line : Lines(text)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t end = line.find_first_of("{ ");
    e.samples.insert(line.substr(0, end));
    if (end != std::string::npos && line[end] == '{') {
      const std::string labels = line.substr(end, line.find('}') - end);
      for (std::sregex_iterator it(labels.begin(), labels.end(), kLabel), stop; it != stop; ++it) {
        e.labels.insert((*it)[1]);
      }
    }
  }
  return e;
}

TEST(PrometheusTest, EveryMetricNameUsedExistsOnTheServersMetricsPage) {
  TempDir dir;
  auto server =
      ServerProcess::Start({"--store=:memory:"}, dir.File("server.log"), CleanEnvironment());
  ASSERT_TRUE(server.ok()) << server.status();
  auto page = HttpGet((*server)->metrics_port(), "/metrics");
  ASSERT_TRUE(page.ok()) << page.status();
  const Exposition exposition = ParseExposition(*page);
  ASSERT_GT(exposition.samples.count("grpc_server_handled_total"), 0u) << *page;

  // Tokens that look like srn's metric names (srn_*, grpc_*), not inside recording-rule names
  // (srn:...:...) or longer identifiers.
  static const std::regex kName(R"((?:^|[^A-Za-z0-9_:])((?:srn|grpc)_[A-Za-z0-9_]+))");
  std::map<std::string, std::set<std::string>> missing;  // name -> files
  int checked = 0;
  for (const std::string& file : {kRules, kRuleTests, kDashboard}) {
    auto text = ReadFileText(SourcePath(file));
    ASSERT_TRUE(text.ok()) << text.status();
    for (std::sregex_iterator it(text->begin(), text->end(), kName), end; it != end; ++it) {
      const std::string name = (*it)[1];
      ++checked;
      // A histogram's family name (x) stands for its x_bucket/x_sum/x_count samples.
      if (exposition.samples.count(name) == 0 && exposition.samples.count(name + "_bucket") == 0 &&
          exposition.labels.count(name) == 0) {
        missing[name].insert(file);
      }
    }
  }
  EXPECT_GT(checked, 20);
  std::vector<std::string> report;
  for (const auto& [name, files] : missing) {
    report.push_back(absl::StrCat(name, " (", absl::StrJoin(files, ", "), ")"));
  }
  EXPECT_TRUE(missing.empty()) << "metric names used in rules/tests/dashboard but not exported by "
                                  "srn-server's /metrics:\n  "
                               << absl::StrJoin(report, "\n  ");
}

TEST(PrometheusTest, ComposeScrapeTargetIsTheServersMetricsPort) {
  auto config = ReadFileText(SourcePath("deploy/prometheus/prometheus.yml"));
  auto compose = ReadFileText(SourcePath("docker-compose.yml"));
  ASSERT_TRUE(config.ok() && compose.ok());
  EXPECT_TRUE(absl::StrContains(*config, "job_name: srn")) << "the rules select job=\"srn\"";
  EXPECT_TRUE(absl::StrContains(*config, "- srn-rules.yml"));
  // targets: ["srn:9464"]: the compose service "srn" and the image's metrics port.
  EXPECT_TRUE(absl::StrContains(*config, "\"srn:9464\"")) << *config;
  EXPECT_TRUE(absl::StrContains(*compose, "\n  srn:\n")) << "no compose service named srn";
}

}  // namespace
}  // namespace srn::testing
