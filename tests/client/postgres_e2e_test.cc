// srn-server on a PostgreSQL store shared by two servers, end to end with a real PostgreSQL server
// the test starts (tests/testing/scratch_postgres.h): what one server enrolled, a server started
// later serves; bad URIs and unsupported combinations are refused, never echoing a password.

#include <signal.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "client/series_files.h"
#include "grpcpp/create_channel.h"
#include "srn/v1/similarity.grpc.pb.h"
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

  // `r` is srnctl's answer to verifying signature 0 against alice, enrolled with signatures 0
  // and 1 (fusion max): her two references, in order, scored by the model.
  void ExpectAliceVerified(const ProcessResult& r) {
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::vector<double> scores = NumbersAfter(r.out, "reference scores: ");
    ASSERT_EQ(scores.size(), 2u) << r.out;
    EXPECT_NEAR(scores[0], Similarity(0, 0), 1e-4);
    EXPECT_NEAR(scores[1], Similarity(0, 1), 1e-4);
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
  ExpectAliceVerified(r);
  r = Ctl(*b, {"get", "--subject=bob"});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.err, StartsWith("srnctl: NOT_FOUND: "));
}

// Waits (up to 30 s) until `server` answers srnctl `args` with exit code `exit_code`; the last
// answer.
ProcessResult AwaitAnswer(const ServerProcess& server, const std::vector<std::string>& args,
                          int exit_code) {
  ProcessResult r;
  for (int attempt = 0; attempt < 300; ++attempt) {
    std::vector<std::string> full = {absl::StrCat("--server=", server.address())};
    full.insert(full.end(), args.begin(), args.end());
    r = RunSrnctl(full, CleanEnvironment());
    if (r.exit_code == exit_code) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return r;
}

// `server`'s metric `name` (with `labels`); nullopt when it cannot be read.
std::optional<double> Metric(const ServerProcess& server, const std::string& name,
                             const std::map<std::string, std::string>& labels = {}) {
  absl::StatusOr<std::string> page = HttpGet(server.metrics_port(), "/metrics");
  if (!page.ok()) return std::nullopt;
  return MetricValue(*page, name, labels);
}

// Waits (up to 30 s) until `server`'s metric `name` is `value`; its last value.
std::optional<double> AwaitMetric(const ServerProcess& server, const std::string& name,
                                  double value) {
  std::optional<double> now;
  for (int attempt = 0; attempt < 300; ++attempt) {
    now = Metric(server, name);
    if (now == value) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return now;
}

// Two servers running at once on one database follow each other's writes: an Enroll acknowledged
// by A is verified on B, a Delete on B reaches A, and writes by both to one subject leave both
// serving the same, stored state.
TEST_F(PostgresEndToEnd, RunningServersFollowEachOthersWrites) {
  std::unique_ptr<ServerProcess> a = StartServer(uri_);
  std::unique_ptr<ServerProcess> b = StartServer(uri_);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ProcessResult r = Ctl(*a, {"enroll", "--subject=alice", Svc(0), Svc(1)});
  ASSERT_EQ(r.exit_code, 0) << r.err << a->Log();
  r = AwaitAnswer(*b, {"verify", "--subject=alice", "--fusion=max", Svc(0)}, 0);
  ASSERT_EQ(r.exit_code, 0) << r.err << b->Log();
  ExpectAliceVerified(r);
  // B measured how long the change took to reach it (one change so far; loopback: well under 30
  // s, however loaded the machine).
  EXPECT_EQ(AwaitMetric(*b, "srn_store_follow_lag_seconds_count", 1), 1.0);
  EXPECT_LT(Metric(*b, "srn_store_follow_lag_seconds_sum").value_or(1e9), 30.0);
  EXPECT_EQ(Metric(*b, "srn_store_follow_failing"), 0.0);

  r = Ctl(*b, {"delete", "--subject=alice"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = AwaitAnswer(*a, {"get", "--subject=alice"}, 1);
  EXPECT_THAT(r.err, StartsWith("srnctl: NOT_FOUND: ")) << r.out;

  // Both add to one subject, one after the other: 4 references on both, then a threshold set on
  // B, and both agree with what a server started now reads.
  for (int i = 0; i < 4; ++i) {
    const ServerProcess& writer = i % 2 == 0 ? *a : *b;
    r = Ctl(writer, {"enroll", "--subject=carol", Svc(i)});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  r = Ctl(*b, {"enroll", "--subject=carol", "--threshold=0.625", Svc(4)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const ServerProcess* server : {a.get(), b.get()}) {
    for (int attempt = 0; attempt < 300; ++attempt) {
      r = Ctl(*server, {"get", "--subject=carol"});
      if (absl::StartsWith(r.out, "carol\t5 references\tthreshold 0.625000")) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_THAT(r.out, StartsWith("carol\t5 references\tthreshold 0.625000")) << r.err;
  }
  std::unique_ptr<ServerProcess> c = StartServer(uri_);
  ASSERT_NE(c, nullptr);
  r = Ctl(*c, {"get", "--subject=carol"});
  EXPECT_THAT(r.out, StartsWith("carol\t5 references\tthreshold 0.625000")) << r.err;
}

// Two servers adding references to one subject at the same time: every acknowledged addition is
// kept (none overwrites another the writing server had not seen yet), and both serve them all.
// A call may fail with UNAVAILABLE when the subject keeps changing under it; the client retries.
TEST_F(PostgresEndToEnd, ConcurrentAdditionsToOneSubjectOnTwoServersAreAllKept) {
  std::unique_ptr<ServerProcess> a = StartServer(uri_);
  std::unique_ptr<ServerProcess> b = StartServer(uri_);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  constexpr int kPerServer = 6;
  std::atomic<int> acknowledged{0};
  const auto add = [&](const ServerProcess* server, int first) {
    for (int i = first; i < first + kPerServer; ++i) {
      for (int attempt = 0; attempt < 5; ++attempt) {
        const ProcessResult r = Ctl(*server, {"enroll", "--subject=dave", Svc(i % 6)});
        if (r.exit_code == 0) {
          ++acknowledged;
          break;
        }
        EXPECT_THAT(r.err, StartsWith("srnctl: UNAVAILABLE: ")) << r.out;
      }
    }
  };
  std::thread on_a(add, a.get(), 0);
  std::thread on_b(add, b.get(), kPerServer);
  on_a.join();
  on_b.join();
  ASSERT_EQ(acknowledged.load(), 2 * kPerServer);
  const std::string expected = absl::StrCat("dave\t", 2 * kPerServer, " references");
  for (const ServerProcess* server : {a.get(), b.get()}) {
    ProcessResult r;
    for (int attempt = 0; attempt < 300; ++attempt) {
      r = Ctl(*server, {"get", "--subject=dave"});
      if (absl::StartsWith(r.out, expected)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_THAT(r.out, StartsWith(expected)) << r.err;
  }
}

// While PostgreSQL is down, writes fail with UNAVAILABLE naming the store, reads go on from
// memory, nothing crashes; once it is back, both servers write and follow again by themselves.
TEST_F(PostgresEndToEnd, ServersRideOutADatabaseRestart) {
  std::unique_ptr<ServerProcess> a = StartServer(uri_);
  std::unique_ptr<ServerProcess> b = StartServer(uri_);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ProcessResult r = Ctl(*a, {"enroll", "--subject=alice", Svc(0), Svc(1)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectAliceVerified(AwaitAnswer(*b, {"verify", "--subject=alice", "--fusion=max", Svc(0)}, 0));

  std::string why;
  ASSERT_TRUE(postgres_->Stop(&why)) << why;
  r = Ctl(*a, {"enroll", "--subject=bob", Svc(2)});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.err, StartsWith("srnctl: UNAVAILABLE: subject store postgresql://127.0.0.1:"));
  EXPECT_EQ(Metric(*a, "srn_store_errors_total", {{"op", "write"}}), 1.0);
  ExpectAliceVerified(Ctl(*b, {"verify", "--subject=alice", "--fusion=max", Svc(0)}));
  EXPECT_EQ(AwaitMetric(*b, "srn_store_follow_failing", 1), 1.0);
  EXPECT_GE(Metric(*b, "srn_store_errors_total", {{"op", "follow"}}).value_or(0), 1.0);

  ASSERT_TRUE(postgres_->Restart(&why)) << why;
  r = AwaitAnswer(*a, {"enroll", "--subject=bob", Svc(2)}, 0);
  EXPECT_EQ(r.exit_code, 0) << r.err << a->Log();
  r = AwaitAnswer(*b, {"get", "--subject=bob"}, 0);
  EXPECT_EQ(r.exit_code, 0) << r.err << b->Log();
  r = Ctl(*b, {"delete", "--subject=alice"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = AwaitAnswer(*a, {"get", "--subject=alice"}, 1);
  EXPECT_THAT(r.err, StartsWith("srnctl: NOT_FOUND: "));
  for (const ServerProcess* server : {a.get(), b.get()}) {
    EXPECT_EQ(Ctl(*server, {"health"}).exit_code, 0) << server->Log();  // never crashed
    EXPECT_EQ(AwaitMetric(*server, "srn_store_follow_failing", 0), 0.0);
  }
}

// A server frozen while another wrote for longer than the change log keeps changes (here: none
// kept) finds the log pruned past its position when it thaws, reads the whole store again and
// serves every write it missed, then follows again.
TEST_F(PostgresEndToEnd, AServerCutOffLongerThanTheChangeLogReadsTheStoreAgain) {
  const std::vector<std::string> no_retention = {"--change_log_retention_seconds=0"};
  std::unique_ptr<ServerProcess> a = StartServer(uri_, no_retention);
  std::unique_ptr<ServerProcess> b = StartServer(uri_, no_retention);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_EQ(kill(b->pid(), SIGSTOP), 0);
  ProcessResult r = Ctl(*a, {"enroll", "--subject=alice", Svc(0), Svc(1)});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // so alice's change is older
  r = Ctl(*a, {"enroll", "--subject=bob", Svc(2)});              // and pruned by this write
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(kill(b->pid(), SIGCONT), 0);

  ExpectAliceVerified(AwaitAnswer(*b, {"verify", "--subject=alice", "--fusion=max", Svc(0)}, 0));
  EXPECT_EQ(AwaitAnswer(*b, {"get", "--subject=bob"}, 0).exit_code, 0) << b->Log();
  EXPECT_THAT(b->Log(), HasSubstr("are no longer kept"));
  EXPECT_THAT(b->Log(), HasSubstr("read the whole store again; following it from there"));
  // And follows from there.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  r = Ctl(*a, {"delete", "--subject=bob"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = AwaitAnswer(*b, {"get", "--subject=bob"}, 1);
  EXPECT_THAT(r.err, StartsWith("srnctl: NOT_FOUND: ")) << b->Log();
}

// The model registry lives in the database: a version imported on B is listed on A; A activates
// it under Verify load on B, and B follows, serving the embeddings A stored (re-embedding none)
// with no failed call and every answer scored by one model or the other, never a mix; a
// rollback on B is followed by A the same way.
TEST_F(PostgresEndToEnd, AnActivationOnOneServerIsFollowedByTheOthers) {
  std::unique_ptr<ServerProcess> a = StartServer(uri_);
  std::unique_ptr<ServerProcess> b = StartServer(uri_);
  std::unique_ptr<ServerProcess> c = StartServer(uri_);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_NE(c, nullptr);
  ProcessResult r = Ctl(*a, {"enroll", "--subject=alice", Svc(0), Svc(1)});
  ASSERT_EQ(r.exit_code, 0) << r.err << a->Log();
  r = Ctl(*a, {"enroll", "--subject=bob", Svc(2)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string second_path = dir_.File("second.srnw");
  absl::StatusOr<std::shared_ptr<const SimilarityModel>> second =
      WriteSignatureModel(second_path, features_, /*seed=*/8);
  ASSERT_TRUE(second.ok()) << second.status();
  r = Ctl(*b, {"import-model", Svc(0)});  // not a weights file
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.err, StartsWith("srnctl: INVALID_ARGUMENT: cannot import the weights: "));
  r = Ctl(*b, {"import-model", second_path});
  ASSERT_EQ(r.exit_code, 0) << r.err << b->Log();
  EXPECT_THAT(r.out, StartsWith("registered v2 "));
  r = Ctl(*a, {"models"});
  EXPECT_THAT(r.out, HasSubstr(" v2\t")) << r.err;

  // B and C have followed A's enrollments before the load starts.
  for (const ServerProcess* server : {b.get(), c.get()}) {
    r = AwaitAnswer(*server, {"verify", "--subject=alice", "--fusion=max", Svc(0)}, 0);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  // Alice's reference scores by the first model and by the second.
  const std::vector<double> by_first = {Similarity(0, 0), Similarity(0, 1)};
  std::vector<double> by_second;
  for (int j : {0, 1}) by_second.push_back(*(*second)->Similarity(features_[0], features_[j]));
  // Verify load on all three servers while A activates.
  std::atomic<bool> stop{false};
  std::atomic<int> calls{0}, failed{0}, mixed{0};
  std::mutex failure_mu;
  std::string first_failure;  // guarded by failure_mu
  std::vector<std::thread> load;
  for (const ServerProcess* server : {a.get(), b.get(), c.get()}) {
    load.emplace_back([&, server] {
      while (!stop) {
        const ProcessResult v =
            Ctl(*server, {"verify", "--subject=alice", "--fusion=max", Svc(0)});
        ++calls;
        const std::vector<double> scores = NumbersAfter(v.out, "reference scores: ");
        const auto near = [&](const std::vector<double>& want) {
          return scores.size() == 2 && std::abs(scores[0] - want[0]) < 1e-4 &&
                 std::abs(scores[1] - want[1]) < 1e-4;
        };
        if (v.exit_code != 0) {
          std::lock_guard<std::mutex> lock(failure_mu);
          if (++failed == 1) first_failure = v.err;
        } else if (!near(by_first) && !near(by_second)) {
          ++mixed;
        }
      }
    });
  }
  r = Ctl(*a, {"activate", "2"});
  EXPECT_EQ(r.exit_code, 0) << r.err << a->Log();
  EXPECT_THAT(r.out, HasSubstr("re-embedded 2 subjects"));
  // B and C follow within seconds (notified; at worst their 5 s poll), and say how.
  for (const ServerProcess* server : {b.get(), c.get()}) {
    bool followed = false;
    for (int attempt = 0; attempt < 300 && !followed; ++attempt) {
      followed =
          absl::StrContains(server->Log(), "serving model version 2, activated in postgresql://");
      if (!followed) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_TRUE(followed) << server->Log();
    EXPECT_THAT(server->Log(), HasSubstr("(2 subjects as stored, 0 re-embedded in memory"));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // load on the new model too
  stop = true;
  for (std::thread& thread : load) thread.join();
  EXPECT_GT(calls.load(), 0);
  EXPECT_EQ(failed.load(), 0) << first_failure << b->Log();
  EXPECT_EQ(mixed.load(), 0);
  r = Ctl(*b, {"verify", "--subject=alice", "--fusion=max", Svc(0)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<double> scores = NumbersAfter(r.out, "reference scores: ");
  ASSERT_EQ(scores.size(), 2u) << r.out;
  EXPECT_NEAR(scores[0], by_second[0], 1e-4);
  EXPECT_NEAR(scores[1], by_second[1], 1e-4);

  // A rollback on B: A follows back to version 1, again from what B stored.
  r = Ctl(*b, {"rollback"});
  EXPECT_EQ(r.exit_code, 0) << r.err << b->Log();
  r = AwaitAnswer(*a, {"verify", "--subject=alice", "--fusion=max", Svc(0)}, 0);
  for (int attempt = 0; attempt < 300; ++attempt) {
    if (absl::StrContains(a->Log(), "serving model version 1, activated in")) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_THAT(a->Log(), HasSubstr("serving model version 1, activated in"));
  r = Ctl(*a, {"verify", "--subject=alice", "--fusion=max", Svc(0)});
  ExpectAliceVerified(r);
  // A server started now serves the active version, not its --weights.
  std::unique_ptr<ServerProcess> d = StartServer(uri_);
  ASSERT_NE(d, nullptr);
  r = Ctl(*d, {"models"});
  EXPECT_THAT(r.out, HasSubstr("* v1\t")) << r.err;
}

// Frames of `features` numbers per step for a CSV dataset: class c is a sine of its own
// frequency, plus noise.
std::string FramesCsv(int c, int copy) {
  std::string csv;
  for (int t = 0; t < 30; ++t) {
    const double x = std::sin(0.2 * (c + 1) * t + 0.1 * copy);
    absl::StrAppend(&csv, x, ",", std::cos(0.3 * (c + 1) * t) + 0.01 * ((copy * 7 + t) % 5),
                    "\n");
  }
  return csv;
}

TEST_F(PostgresEndToEnd, TrainersRunTheJobsAnyServerRecordedAndADeadTrainersJobEnds) {
  // A dataset only the trainers can read: 4 classes x 20 series.
  const std::string data = dir_.File("data");
  std::filesystem::create_directories(data + "/frames");
  std::string manifest = "path,label\n";
  for (int c = 0; c < 4; ++c) {
    for (int copy = 0; copy < 20; ++copy) {
      const std::string file = absl::StrCat(data, "/frames/c", c, "_", copy, ".csv");
      ASSERT_TRUE(WriteFile(file, FramesCsv(c, copy)));
      absl::StrAppend(&manifest, file, ",class", c, "\n");
    }
  }
  ASSERT_TRUE(WriteFile(data + "/frames.csv", manifest));
  std::unique_ptr<ServerProcess> a = StartServer(uri_);
  ASSERT_NE(a, nullptr);
  const std::vector<std::string> trainer_flags = {
      "--role=trainer", absl::StrCat("--data_dir=", data), "--job_heartbeat_seconds=0.2",
      "--job_heartbeat_timeout_seconds=2", "--drain_seconds=0", "--grace_seconds=1"};
  std::vector<std::string> flags = trainer_flags;
  flags.push_back("--trainer_name=t1");
  std::unique_ptr<ServerProcess> t1 = StartServer(uri_, flags);
  ASSERT_NE(t1, nullptr);
  EXPECT_THAT(t1->Log(), HasSubstr("trainer 't1' runs the training jobs of training jobs in "
                                   "postgresql://"));
  const std::vector<std::string> job = {"--dataset=frames.csv", "--dataset_format=csv",
                                        "--hidden=8", "--validation=examples"};
  auto train = [&](const ServerProcess& server, std::vector<std::string> more) {
    std::vector<std::string> args = job;
    args.insert(args.end(), more.begin(), more.end());
    args.push_back("train");
    return Ctl(server, args);
  };
  auto await_state = [&](const ServerProcess& server, const std::string& line) {
    ProcessResult r;
    for (int attempt = 0; attempt < 300; ++attempt) {
      r = Ctl(server, {"--all", "jobs"});
      if (absl::StrContains(r.out, line)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return r;
  };

  // A job recorded on A runs on the trainer and registers its model for every server.
  ProcessResult r = train(*a, {"--epochs=2", "--pairs_per_epoch=200", "--watch"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << t1->Log();
  EXPECT_THAT(r.out, HasSubstr("job-1\tsucceeded")) << r.out;
  r = Ctl(*a, {"models"});
  EXPECT_THAT(r.out, HasSubstr(" v2\t")) << r.err;
  // A dataset the trainer cannot read fails the job, saying which trainer and why.
  r = Ctl(*a, {"--dataset=missing.csv", "--dataset_format=csv", "--watch", "train"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("job-2\tfailed")) << r.out;
  EXPECT_THAT(r.out, HasSubstr("trainer 't1' cannot run it: ")) << r.out;
  // Uploads are refused on a shared store, with what to do instead.
  ASSERT_TRUE(WriteFile(dir_.File("upload.csv"),
                        absl::StrCat("path,label\n", Svc(0), ",a\n", Svc(1), ",b\n")));
  r = Ctl(*a, {"--format=svc", absl::StrCat("--upload=", dir_.File("upload.csv")), "train"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("FAILED_PRECONDITION: a server on a PostgreSQL store does not take "
                               "uploads"));

  // A running job cancelled on A stops on the trainer.
  const std::vector<std::string> long_job = {"--epochs=1000", "--pairs_per_epoch=100000"};
  r = train(*a, long_job);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("queued job-3"));
  r = await_state(*a, "job-3\trunning");
  ASSERT_THAT(r.out, HasSubstr("job-3\trunning")) << t1->Log();
  r = Ctl(*a, {"cancel", "job-3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Ctl(*a, {"watch", "job-3"});
  EXPECT_THAT(r.out, HasSubstr("job-3\tcancelled")) << r.out << t1->Log();

  // The trainer killed mid-job: its job does not stay running.
  r = train(*a, long_job);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = await_state(*a, "job-4\trunning");
  ASSERT_THAT(r.out, HasSubstr("job-4\trunning")) << t1->Log();
  ASSERT_EQ(kill(t1->pid(), SIGKILL), 0);
  r = Ctl(*a, {"watch", "job-4"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, HasSubstr("job-4\tinterrupted")) << r.out;
  EXPECT_THAT(r.out, HasSubstr("trainer 't1' sent no heartbeat for ")) << r.out;
  absl::StatusOr<std::string> metrics = HttpGet(a->metrics_port(), "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(MetricValue(*metrics, "srn_training_jobs_abandoned_total", {}), 1.0);

  // Two trainers share the queue; every job runs once and succeeds.
  std::vector<std::unique_ptr<ServerProcess>> trainers;
  for (const char* name : {"--trainer_name=t2", "--trainer_name=t3"}) {
    flags = trainer_flags;
    flags.push_back(name);
    trainers.push_back(StartServer(uri_, flags));
    ASSERT_NE(trainers.back(), nullptr);
  }
  for (int i = 0; i < 3; ++i) {
    r = train(*a, {"--epochs=1", "--pairs_per_epoch=200"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  for (int id = 5; id <= 7; ++id) {
    r = Ctl(*a, {"watch", absl::StrCat("job-", id)});
    EXPECT_THAT(r.out, HasSubstr(absl::StrCat("job-", id, "\tsucceeded"))) << r.out;
  }
  double claims = 0;
  for (const auto& trainer : trainers) {
    metrics = HttpGet(trainer->metrics_port(), "/metrics");
    ASSERT_TRUE(metrics.ok());
    claims += MetricValue(*metrics, "srn_training_job_claims_total", {}).value_or(-100);
  }
  EXPECT_EQ(claims, 3.0);
  r = Ctl(*a, {"models"});
  EXPECT_THAT(r.out, HasSubstr(" v5\t")) << r.out;
  EXPECT_THAT(r.out, Not(HasSubstr(" v6\t"))) << r.out;
}

// A replica killed (SIGKILL) while many enrollments wait for their commits together (group
// commit): every enrollment it acknowledged is served by the other two.
TEST_F(PostgresEndToEnd, AReplicaKilledUnderEnrollmentLoadLosesNoAcknowledgedEnrollment) {
  std::unique_ptr<ServerProcess> a = StartServer(uri_);
  std::unique_ptr<ServerProcess> b = StartServer(uri_);
  std::unique_ptr<ServerProcess> c = StartServer(uri_);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_NE(c, nullptr);
  std::vector<v1::SeriesInput> inputs;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<v1::SeriesInput> in = ReadSeriesInput(Svc(i), SeriesFormat::kSvc);
    ASSERT_TRUE(in.ok()) << in.status();
    inputs.push_back(*in);
  }
  auto channel = grpc::CreateChannel(a->address(), grpc::InsecureChannelCredentials());
  std::mutex mu;
  std::vector<std::string> acknowledged;  // guarded by mu
  std::atomic<int> attempted{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 16; ++w) {
    writers.emplace_back([&, w] {
      auto stub = v1::SimilarityService::NewStub(channel);
      for (int i = 0;; ++i) {
        v1::EnrollRequest request;
        request.set_subject_id(absl::StrCat("w", w, "-", i));
        for (const v1::SeriesInput& input : inputs) *request.add_references() = input;
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
        v1::EnrollResponse response;
        ++attempted;
        if (!stub->Enroll(&ctx, request, &response).ok()) return;  // A is gone
        std::lock_guard<std::mutex> lock(mu);
        acknowledged.push_back(request.subject_id());
      }
    });
  }
  // Kill A mid-load, once it has acknowledged a good number.
  for (int wait = 0; wait < 300; ++wait) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (acknowledged.size() >= 150) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(kill(a->pid(), SIGKILL), 0);
  for (std::thread& t : writers) t.join();
  ASSERT_GE(acknowledged.size(), 150u) << a->Log();
  // B and C serve every acknowledged enrollment (after following the last changes).
  for (const ServerProcess* server : {b.get(), c.get()}) {
    auto stub = v1::SimilarityService::NewStub(
        grpc::CreateChannel(server->address(), grpc::InsecureChannelCredentials()));
    int missing = 0;
    for (const std::string& id : acknowledged) {
      grpc::Status status;
      for (int attempt = 0; attempt < 100; ++attempt) {
        grpc::ClientContext ctx;
        v1::GetSubjectRequest request;
        request.set_subject_id(id);
        v1::Subject subject;
        status = stub->GetSubject(&ctx, request, &subject);
        if (status.ok()) {
          EXPECT_EQ(subject.reference_count(), 3) << id;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (!status.ok()) ++missing;
    }
    EXPECT_EQ(missing, 0) << "of " << acknowledged.size() << " acknowledged ("
                          << attempted.load() << " attempted)";
  }
}

TEST_F(PostgresEndToEnd, UnreachableOrUnsupportedStoresAreRefusedWithoutThePassword) {
  // Nothing listens on this port (the scratch server's, plus one, is free enough: the refusal
  // is what is checked, whatever the reason).
  const std::string unreachable =
      absl::StrCat("postgresql://srn:s3cret-pw@127.0.0.1:", postgres_->port() + 1, "/nowhere");
  ProcessResult r = RunServer({absl::StrCat("--store=", unreachable)});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  // The model registry, in the same database, is opened first.
  EXPECT_THAT(r.err, HasSubstr("cannot connect to the model registry postgresql://127.0.0.1:"));
  EXPECT_THAT(r.err, Not(HasSubstr("s3cret-pw")));

  r = RunServer({"--store=postgresql://127.0.0.1:5432/db?sslmode=bogus"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("sslmode"));

  r = RunServer({absl::StrCat("--store=", uri_), absl::StrCat("--model_dir=", dir_.File("m"))});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("--model_dir is for a SQLite store: with a PostgreSQL store, the "
                               "model registry lives in the database"));
}

}  // namespace
}  // namespace srn::testing
