// srnctl against the real srn-server: every command, its output and exit code, the metrics the
// calls move, graceful shutdown on SIGTERM, and durability across a restart.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/weights/weights_file.h"
#include "tests/client/e2e_fixture.h"

namespace srn::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr double kTolerance = 2e-5;  // srnctl prints 6 decimals

std::string Describe(const ProcessResult& r) {
  return absl::StrCat("exit ", r.exit_code, r.timed_out ? " (timed out)" : "", "\nstdout:\n", r.out,
                      "\nstderr:\n", r.err);
}

double Mean(std::vector<double> v) {
  double sum = 0;
  for (double x : v) sum += x;
  return sum / v.size();
}

class SrnctlEndToEnd : public EndToEndTest {};

TEST_F(SrnctlEndToEnd, EveryCommandAgainstTheRealServer) {
  const std::string store = dir_.File("store.db");
  std::unique_ptr<ServerProcess> server =
      StartServer(store, {"--drain_seconds=0.2", "--grace_seconds=1"});
  ASSERT_NE(server, nullptr);
  ASSERT_TRUE(WaitUntilServing({absl::StrCat("--server=", server->address())}, CleanEnvironment()))
      << server->Log();

  {
    SCOPED_TRACE("health");
    ProcessResult r = Ctl(*server, {"health"});
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_EQ(r.out, "SERVING\n");
    r = Ctl(*server, {"--json", "health"});
    EXPECT_EQ(r.out, "{\"status\":\"SERVING\"}\n");
  }
  {
    SCOPED_TRACE("model-info");
    ProcessResult r = Ctl(*server, {"model-info"});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_THAT(r.out, HasSubstr(absl::StrCat("model_id: ", ModelFingerprint(*model_), "\n")));
    EXPECT_THAT(r.out, HasSubstr("family: srn-a (cell relu, pooling mean, hidden 8, layers 1)\n"));
    EXPECT_THAT(r.out, HasSubstr("input: SIGNATURE, 12 features per frame, window 1\n"));
    EXPECT_THAT(r.out, HasSubstr("training_data: srnctl end-to-end test (random weights)\n"));
    r = Ctl(*server, {"--json", "model-info"});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_THAT(r.out,
                StartsWith(absl::StrCat("{\"model_id\":\"", ModelFingerprint(*model_), "\"")));
    EXPECT_THAT(r.out, HasSubstr("\"input_kind\":\"SIGNATURE\""));
    EXPECT_THAT(r.out, HasSubstr("\"embedding_dims\":8"));
  }
  {
    SCOPED_TRACE("embed: pen input and CSV features give the in-process embeddings");
    ProcessResult r = Ctl(*server, {"embed", Svc(0), Csv(2)});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    absl::StatusOr<RowMatrix> expected = model_->Embed({&features_[0], &features_[2]});
    ASSERT_TRUE(expected.ok()) << expected.status();
    const std::vector<double> first = NumbersAfter(r.out, Svc(0) + ": ");
    const std::vector<double> second = NumbersAfter(r.out, Csv(2) + ": ");
    ASSERT_EQ(first.size(), 8u) << r.out;
    ASSERT_EQ(second.size(), 8u) << r.out;
    for (int k = 0; k < 8; ++k) {
      EXPECT_NEAR(first[k], (*expected)(0, k), 1e-5 * std::max(1.0, std::fabs(first[k])));
      EXPECT_NEAR(second[k], (*expected)(1, k), 1e-5 * std::max(1.0, std::fabs(second[k])));
    }
    EXPECT_THAT(r.out, HasSubstr(absl::StrCat("model: ", ModelFingerprint(*model_), "\n")));
  }
  {
    SCOPED_TRACE("similarity");
    ProcessResult r = Ctl(*server, {"similarity", Svc(0), Svc(2)});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_NEAR(NumberAfter(r.out, "similarity: ").value_or(-1), Similarity(0, 2), kTolerance)
        << r.out;
    // The same signature as pen samples and as precomputed features: the features of training.
    r = Ctl(*server, {"similarity", Svc(1), Csv(1)});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_NEAR(NumberAfter(r.out, "similarity: ").value_or(-1), Similarity(1, 1), kTolerance)
        << r.out;
    // --format=csv forces the CSV reader, which cannot read an SVC file's sample lines.
    r = Ctl(*server, {"--format=csv", "similarity", Svc(0), Svc(1)});
    EXPECT_EQ(r.exit_code, 2) << Describe(r);
    EXPECT_THAT(r.err, StartsWith("srnctl: INVALID_ARGUMENT: " + Svc(0) + ":"));
  }

  absl::StatusOr<std::string> before = HttpGet(server->metrics_port(), "/metrics");
  ASSERT_TRUE(before.ok()) << before.status();
  const std::map<std::string, std::string> enroll_ok = {{"grpc_method", "Enroll"},
                                                        {"grpc_code", "OK"}};
  const std::optional<double> enrolls_before =
      MetricValue(*before, "grpc_server_handled_total", enroll_ok);
  ASSERT_TRUE(enrolls_before.has_value()) << *before;
  const double decisions_before =
      MetricValue(*before, "srn_verify_decisions_total", {{"outcome", "accept"}}).value_or(-1) +
      MetricValue(*before, "srn_verify_decisions_total", {{"outcome", "reject"}}).value_or(-1);

  {
    SCOPED_TRACE("enroll: add, add more, replace");
    ProcessResult r = Ctl(*server, {"enroll", "--subject=alice", Svc(0), Svc(1)});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_THAT(r.out, StartsWith("enrolled alice\t2 references\tthreshold default\t"));
    r = Ctl(*server, {"enroll", "--subject=alice", "--mode=add", Svc(4)});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_THAT(r.out, StartsWith("enrolled alice\t3 references\t"));
    r = Ctl(*server, {"enroll", "--subject=alice", "--mode=replace", Svc(0), Csv(1)});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_THAT(r.out, StartsWith("enrolled alice\t2 references\t"));
    r = Ctl(*server, {"enroll", "--subject=bob", "--threshold=0.75", Svc(2), Svc(3)});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_THAT(r.out, StartsWith("enrolled bob\t2 references\tthreshold 0.750000\t"));
    r = Ctl(*server, {"--json", "enroll", "--subject=carol", Svc(4)});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_THAT(r.out, StartsWith("{\"subject\":{\"subject_id\":\"carol\",\"reference_count\":1,"));
    r = Ctl(*server, {"enroll", "--subject=dave", "--mode=merge", Svc(4)});
    EXPECT_EQ(r.exit_code, 2) << Describe(r);
    EXPECT_THAT(r.err, HasSubstr("--mode must be add or replace"));
    r = Ctl(*server, {"enroll", "--subject=bad id!", Svc(4)});
    EXPECT_EQ(r.exit_code, 1) << Describe(r);
    EXPECT_THAT(r.err, StartsWith("srnctl: INVALID_ARGUMENT: "));
  }
  int verify_calls = 0;
  {
    SCOPED_TRACE("verify a copy of a reference");
    const std::vector<double> refs = {Similarity(0, 0), Similarity(0, 1)};
    const double best = std::max(refs[0], refs[1]);
    ProcessResult r = Ctl(*server, {"verify", "--subject=alice", "--fusion=max",
                                    absl::StrCat("--threshold=", best - 0.001), Svc(0)});
    ++verify_calls;
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_THAT(r.out, StartsWith("ACCEPTED alice: score "));
    EXPECT_THAT(r.out, HasSubstr("(fusion max)"));
    EXPECT_NEAR(NumberAfter(r.out, "score ").value_or(-1), best, kTolerance);
    const std::vector<double> scores = NumbersAfter(r.out, "reference scores: ");
    ASSERT_EQ(scores.size(), 2u) << r.out;
    EXPECT_NEAR(scores[0], refs[0], kTolerance);
    EXPECT_NEAR(scores[1], refs[1], kTolerance);

    // Mean fusion, the server's default threshold (0.5) and the decision it implies.
    r = Ctl(*server, {"verify", "--subject=alice", "--fusion=mean", Svc(0)});
    ++verify_calls;
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_NEAR(NumberAfter(r.out, "score ").value_or(-1), Mean(refs), kTolerance);
    EXPECT_THAT(r.out, StartsWith(Mean(refs) >= 0.5 ? "ACCEPTED" : "REJECTED"));
    EXPECT_THAT(r.out, HasSubstr("threshold 0.500000 (fusion mean)"));

    // A threshold above the score rejects: exit 0 unless --fail_on_reject.
    ASSERT_LT(best, 0.999) << "the test model saturates; pick other weights";
    const std::string above = absl::StrCat("--threshold=", best + 0.0005);
    r = Ctl(*server, {"verify", "--subject=alice", "--fusion=max", above, Svc(0)});
    ++verify_calls;
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_THAT(r.out, StartsWith("REJECTED alice: score "));
    r = Ctl(*server,
            {"verify", "--subject=alice", "--fusion=max", "--fail_on_reject", above, Svc(0)});
    ++verify_calls;
    EXPECT_EQ(r.exit_code, 3) << Describe(r);
    EXPECT_THAT(r.out, StartsWith("REJECTED"));
    r = Ctl(*server, {"--json", "verify", "--subject=alice", "--fusion=max", "--fail_on_reject",
                      above, Svc(0)});
    ++verify_calls;
    EXPECT_EQ(r.exit_code, 3) << Describe(r);
    EXPECT_THAT(r.out, HasSubstr("\"accepted\":false"));
    EXPECT_THAT(r.out, HasSubstr("\"fusion\":\"FUSION_MAX\""));

    // bob's own threshold applies when the call gives none.
    r = Ctl(*server, {"verify", "--subject=bob", Svc(2)});
    ++verify_calls;
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_THAT(r.out, HasSubstr("threshold 0.750000"));

    r = Ctl(*server, {"verify", "--subject=nobody", Svc(0)});
    EXPECT_EQ(r.exit_code, 1) << Describe(r);
    EXPECT_THAT(r.err, StartsWith("srnctl: NOT_FOUND: "));
    EXPECT_THAT(r.err, HasSubstr("nobody"));
    r = Ctl(*server, {"verify", "--subject=alice", "--fusion=median", Svc(0)});
    EXPECT_EQ(r.exit_code, 2) << Describe(r);
    r = Ctl(*server, {"verify", "--subject=alice", Svc(0), Svc(1)});
    EXPECT_EQ(r.exit_code, 2) << Describe(r);
  }
  {
    SCOPED_TRACE("identify ranks subjects by fused (mean) score");
    std::vector<std::pair<double, std::string>> expected = {
        {Mean({Similarity(2, 0), Similarity(2, 1)}), "alice"},
        {Mean({Similarity(2, 2), Similarity(2, 3)}), "bob"},
        {Similarity(2, 4), "carol"}};
    std::sort(expected.rbegin(), expected.rend());
    ASSERT_GT(expected[0].first - expected[1].first, 1e-4)
        << "ambiguous ranking; pick other weights";
    ASSERT_GT(expected[1].first - expected[2].first, 1e-4)
        << "ambiguous ranking; pick other weights";
    ProcessResult r = Ctl(*server, {"identify", "--top_k=2", Svc(2)});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    const std::vector<std::string> lines = Lines(r.out);
    ASSERT_EQ(lines.size(), 2u) << r.out;
    EXPECT_THAT(lines[0], StartsWith(absl::StrCat("1\t", expected[0].second, "\t")));
    EXPECT_THAT(lines[1], StartsWith(absl::StrCat("2\t", expected[1].second, "\t")));
    EXPECT_NEAR(NumberAfter(lines[0], expected[0].second + "\t").value_or(-1), expected[0].first,
                kTolerance);
    EXPECT_NEAR(NumberAfter(lines[1], expected[1].second + "\t").value_or(-1), expected[1].first,
                kTolerance);
    // Open set: a threshold between the first and the second keeps only the first.
    const double between = (expected[0].first + expected[1].first) / 2;
    r = Ctl(*server, {"identify", absl::StrCat("--threshold=", between), Svc(2)});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_EQ(Lines(r.out).size(), 1u) << r.out;
    r = Ctl(*server,
            {"identify", absl::StrCat("--threshold=", std::min(1.0, expected[0].first + 0.0005)),
             Svc(2)});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_EQ(r.out, "no candidates\n");
  }
  {
    SCOPED_TRACE("list, pagination, get");
    ProcessResult r = Ctl(*server, {"list", "--page_size=2"});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    std::vector<std::string> lines = Lines(r.out);
    ASSERT_EQ(lines.size(), 3u) << r.out;
    EXPECT_THAT(lines[0], StartsWith("alice\t2 references\t"));
    EXPECT_THAT(lines[1], StartsWith("bob\t2 references\tthreshold 0.750000\t"));
    ASSERT_THAT(lines[2], StartsWith("next page: --page_token="));
    r = Ctl(*server, {"list", "--page_size=2", lines[2].substr(strlen("next page: "))});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    lines = Lines(r.out);
    ASSERT_EQ(lines.size(), 1u) << r.out;
    EXPECT_THAT(lines[0], StartsWith("carol\t1 references\t"));
    r = Ctl(*server, {"list", "--page_size=1", "--all"});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    lines = Lines(r.out);
    ASSERT_EQ(lines.size(), 3u) << r.out;
    EXPECT_THAT(lines[2], StartsWith("carol\t"));
    r = Ctl(*server, {"--json", "list", "--page_size=2", "--all"});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_THAT(r.out, HasSubstr("\"subject_id\":\"alice\""));
    EXPECT_THAT(r.out, HasSubstr("\"subject_id\":\"carol\""));
    EXPECT_THAT(r.out, HasSubstr("\"next_page_token\":\"\""));
    r = Ctl(*server, {"get", "--subject=bob"});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_THAT(r.out, StartsWith("bob\t2 references\tthreshold 0.750000\t"));
  }
  {
    SCOPED_TRACE("metrics moved");
    absl::StatusOr<std::string> after = HttpGet(server->metrics_port(), "/metrics");
    ASSERT_TRUE(after.ok()) << after.status();
    EXPECT_EQ(MetricValue(*after, "grpc_server_handled_total", enroll_ok).value_or(-1),
              *enrolls_before + 5);
    EXPECT_EQ(MetricValue(*after, "grpc_server_handled_total",
                          {{"grpc_method", "Enroll"}, {"grpc_code", "InvalidArgument"}})
                  .value_or(-1),
              1);
    const double decisions_after =
        MetricValue(*after, "srn_verify_decisions_total", {{"outcome", "accept"}}).value_or(-1) +
        MetricValue(*after, "srn_verify_decisions_total", {{"outcome", "reject"}}).value_or(-1);
    EXPECT_EQ(decisions_after, decisions_before + verify_calls);
    EXPECT_EQ(MetricValue(*after, "srn_enrolled", {{"kind", "subjects"}}).value_or(-1), 3);
    EXPECT_EQ(MetricValue(*after, "srn_enrolled", {{"kind", "references"}}).value_or(-1), 5);
  }
  {
    SCOPED_TRACE("delete");
    ProcessResult r = Ctl(*server, {"delete", "--subject=carol"});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_EQ(r.out, "deleted carol\n");
    r = Ctl(*server, {"get", "--subject=carol"});
    EXPECT_EQ(r.exit_code, 1) << Describe(r);
    EXPECT_THAT(r.err, StartsWith("srnctl: NOT_FOUND: "));
    r = Ctl(*server, {"delete", "--subject=carol"});
    EXPECT_EQ(r.exit_code, 1) << Describe(r);
    EXPECT_THAT(r.err, StartsWith("srnctl: NOT_FOUND: "));
  }
  {
    SCOPED_TRACE("bad input");
    ProcessResult r = Ctl(*server, {"embed", dir_.File("missing.csv")});
    EXPECT_EQ(r.exit_code, 2) << Describe(r);
    EXPECT_THAT(r.err, StartsWith("srnctl: NOT_FOUND: "));
    EXPECT_THAT(r.err, HasSubstr(dir_.File("missing.csv")));
    ASSERT_TRUE(WriteFile(dir_.File("three.csv"), "1,2,3\n4,5,6\n"));
    r = Ctl(*server, {"embed", dir_.File("three.csv")});
    EXPECT_EQ(r.exit_code, 1) << Describe(r);
    EXPECT_THAT(r.err, StartsWith("srnctl: INVALID_ARGUMENT: "));
    r = Ctl(*server, {"similarity", Svc(0)});
    EXPECT_EQ(r.exit_code, 2) << Describe(r);
    r = Ctl(*server, {"frobnicate"});
    EXPECT_EQ(r.exit_code, 2) << Describe(r);
    EXPECT_THAT(r.err, HasSubstr("unknown command 'frobnicate'"));
  }

  {
    SCOPED_TRACE("SIGTERM drains and exits 0 by itself");
    double seconds = 0, stopped = 0;
    EXPECT_EQ(server->Terminate(/*timeout_seconds=*/30, &seconds, &stopped), 0) << server->Log();
    // Serving goes on for the drain time at least ...
    EXPECT_GE(stopped, 0.2) << server->Log();
    // ... and the server stops on its own, not killed at the timeout. The bounds are generous
    // (drain 0.2 s + grace 1 s, and civetweb 1.15's metrics server polls its stop flag every 2 s):
    // a loaded machine delays each step; how fast it stops is not what is tested.
    EXPECT_LT(stopped, 0.2 + 1 + 10) << server->Log();
    EXPECT_LT(seconds, 0.2 + 1 + 2 + 10) << server->Log();
    EXPECT_THAT(server->Log(), HasSubstr("srn-server: stopped"));
    ProcessResult r = Ctl(*server, {"--timeout=2", "health"});
    EXPECT_EQ(r.exit_code, 1) << Describe(r);
    EXPECT_THAT(r.err, StartsWith("srnctl: UNAVAILABLE: "));
  }
  {
    SCOPED_TRACE("restart on the same store");
    server = StartServer(store);
    ASSERT_NE(server, nullptr);
    EXPECT_THAT(server->Log(), HasSubstr("; 2 subjects"));
    ProcessResult r = Ctl(*server, {"list", "--all"});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    const std::vector<std::string> lines = Lines(r.out);
    ASSERT_EQ(lines.size(), 2u) << r.out;
    EXPECT_THAT(lines[0], StartsWith("alice\t2 references\t"));
    EXPECT_THAT(lines[1], StartsWith("bob\t2 references\tthreshold 0.750000\t"));
    r = Ctl(*server, {"verify", "--subject=alice", "--fusion=max", Svc(0)});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_NEAR(NumberAfter(r.out, "score ").value_or(-1),
                std::max(Similarity(0, 0), Similarity(0, 1)), kTolerance);
  }
}

// A call whose deadline passes stops the server's work too (before, the server finished a long
// Verify and answered OK to nobody, while other calls waited): the handler ends with
// DEADLINE_EXCEEDED, and the next call is answered.
TEST_F(SrnctlEndToEnd, AVerifyPastItsDeadlineStopsOnTheServer) {
  // Sixteen references of 20,000 pen samples (the request limit), verified by DTW as the bundled
  // model does: about half a second of work per call.
  std::vector<std::string> longs;
  for (int i = 0; i < 16; ++i) {
    longs.push_back(dir_.File(absl::StrCat("long", i, ".txt")));
    ASSERT_TRUE(WriteSvcFile(longs.back(), SyntheticSignature(i % 2, i + 1, 20000)));
  }
  std::unique_ptr<ServerProcess> server =
      StartServer(":memory:", {"--dtw_fusion=1:0,1:0", "--dtw_spread=off",
                               // far past the cost budget, which would refuse the calls up front
                               "--max_dtw_cells_per_call=100000000000"});
  ASSERT_NE(server, nullptr);
  // The enrollment computes the 120 pairs' DTW: about 20 s of one core under ASan on a CPU
  // without AVX-512, so srnctl gets 120 s and the harness waits for it longer than its default.
  std::vector<std::string> enroll = {absl::StrCat("--server=", server->address()), "enroll",
                                     "--subject=long", "--timeout=120"};
  enroll.insert(enroll.end(), longs.begin(), longs.end());
  ProcessResult r = RunSrnctl(enroll, CleanEnvironment(), /*timeout_seconds=*/150);
  ASSERT_EQ(r.exit_code, 0) << Describe(r);

  // The server's own record of Verify calls (started; ended with a code), read from /metrics.
  auto verify_metric = [&](const std::string& name,
                           const std::map<std::string, std::string>& labels) -> double {
    absl::StatusOr<std::string> metrics = HttpGet(server->metrics_port(), "/metrics");
    EXPECT_TRUE(metrics.ok()) << metrics.status();
    std::map<std::string, std::string> all = labels;
    all["grpc_method"] = "Verify";
    return metrics.ok() ? MetricValue(*metrics, name, all).value_or(0) : 0;
  };
  // A call whose deadline passes before it reaches the server (a loaded machine can take longer
  // than the deadline to start srnctl and send 20,000 samples) proves nothing: then the next,
  // longer deadline is tried. Each is far shorter than the work.
  bool reached = false;
  for (const char* timeout : {"0.15", "0.3", "0.6", "1.2"}) {
    const double started_before = verify_metric("grpc_server_started_total", {});
    r = Ctl(*server, {"verify", "--subject=long", absl::StrCat("--timeout=", timeout), longs[0]});
    EXPECT_NE(r.exit_code, 0) << Describe(r);
    EXPECT_THAT(r.err, HasSubstr("DEADLINE_EXCEEDED")) << Describe(r);
    if (verify_metric("grpc_server_started_total", {}) > started_before) {
      reached = true;
      break;
    }
  }
  ASSERT_TRUE(reached) << "no Verify reached the server within 1.2 s deadlines";
  // Every call that reached the server ended there before its work was done: DEADLINE_EXCEEDED,
  // or CANCELLED when srnctl, gone at its own deadline, closed the connection before the
  // server's copy of the deadline passed (not OK after the whole work). Waited for, not timed.
  const double started = verify_metric("grpc_server_started_total", {});
  double stopped = 0, finished = 0;
  for (int attempt = 0; attempt < 200 && stopped + finished < started; ++attempt) {
    stopped = verify_metric("grpc_server_handled_total", {{"grpc_code", "DeadlineExceeded"}}) +
              verify_metric("grpc_server_handled_total", {{"grpc_code", "Canceled"}});
    finished = verify_metric("grpc_server_handled_total", {{"grpc_code", "OK"}});
    if (stopped + finished < started) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(stopped, started) << HttpGet(server->metrics_port(), "/metrics").value_or("");
  EXPECT_EQ(finished, 0.0) << "the server did the whole work of a call past its deadline";
  r = Ctl(*server, {"model-info"});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
}

TEST_F(SrnctlEndToEnd, DrainingReportsNotServingWhileStillAnswering) {
  std::unique_ptr<ServerProcess> server =
      StartServer(":memory:", {"--drain_seconds=3", "--grace_seconds=1"});
  ASSERT_NE(server, nullptr);
  ASSERT_EQ(Ctl(*server, {"health"}).exit_code, 0) << server->Log();
  // Terminate blocks until the exit, so it runs beside the probing.
  double seconds = 0, stopped = 0;
  int exit_code = -2;
  std::thread terminate(
      [&] { exit_code = server->Terminate(/*timeout_seconds=*/30, &seconds, &stopped); });
  ProcessResult health;
  for (int attempt = 0; attempt < 40; ++attempt) {
    health = Ctl(*server, {"--timeout=1", "health"});
    if (health.exit_code != 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  EXPECT_EQ(health.exit_code, 1) << Describe(health);
  EXPECT_EQ(health.out, "NOT_SERVING\n");
  // Still answering during the drain, so that load balancers can move traffic away calmly.
  ProcessResult info = Ctl(*server, {"--timeout=1", "model-info"});
  EXPECT_EQ(info.exit_code, 0) << Describe(info);
  terminate.join();
  EXPECT_EQ(exit_code, 0) << server->Log();
  EXPECT_GE(stopped, 3 - 0.1) << server->Log();
  // Stopped by itself after drain and grace; generous bounds (see above).
  EXPECT_LT(stopped, 3 + 1 + 10) << server->Log();
  EXPECT_LT(seconds, 3 + 1 + 2 + 10) << server->Log();
}

}  // namespace
}  // namespace srn::testing
