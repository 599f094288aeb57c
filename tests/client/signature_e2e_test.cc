// End to end: SVC2004 signers enrolled through the real srn-server with the shipped default
// model (deploy/models/default.srnw), verified as docs/RESULTS.md derives from the svc2004-cv
// measurements: fused with the DTW verifier (the server's default for this model), and the SRN
// alone with mean fusion of 5 references and a per-subject threshold from the references' mutual
// similarities (SubjectThreshold, shift normalization).

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/data/signature_features.h"
#include "model/signature/signature_protocol.h"
#include "model/data/svc2004.h"
#include "model/weights/weights_file.h"
#include "tests/client/e2e_harness.h"
#include "tests/testing/test_data.h"

namespace srn::testing {
namespace {

using ::testing::StartsWith;

// The shipped normalized threshold (docs/DEFAULT_MODEL.md): accept when the mean similarity to
// the references is at least the references' own mean mutual similarity plus this.
constexpr double kNormalizedThreshold = -0.024;
// Cross-validated error rates of the shipped recipe at that threshold (5 references), and loose
// margins: these signers were among its training signers, and 45 genuine and 30 forged trials
// are few.
constexpr double kReportedFrr = 0.25;
constexpr double kReportedFarSkilled = 0.25;
constexpr double kMargin = 0.2;

constexpr int kRefs = 5;

std::string File(const std::string& dir, int user, int sig) {
  return absl::StrCat(dir, "/U", user, "S", sig, ".TXT");
}

// Decisions on genuine and forged queries, checked against the error rates reported for them.
struct Tally {
  int genuine = 0, genuine_accepted = 0, forged = 0, forged_rejected = 0;

  void Add(bool is_forgery, bool accepted) {
    if (is_forgery) {
      ++forged;
      forged_rejected += accepted ? 0 : 1;
    } else {
      ++genuine;
      genuine_accepted += accepted ? 1 : 0;
    }
  }

  void ExpectWithin(double reported_frr, double reported_far, double margin) const {
    const double frr = 1.0 - static_cast<double>(genuine_accepted) / genuine;
    const double far = 1.0 - static_cast<double>(forged_rejected) / forged;
    ::testing::Test::RecordProperty("frr", absl::StrCat(frr));
    ::testing::Test::RecordProperty("far_skilled", absl::StrCat(far));
    EXPECT_LE(frr, reported_frr + margin)
        << genuine_accepted << " of " << genuine << " genuine accepted";
    EXPECT_LE(far, reported_far + margin)
        << forged_rejected << " of " << forged << " skilled forgeries rejected";
  }
};

TEST(SignatureEndToEndTest, ShippedModelAloneAcceptsGenuineRejectsSkilledForgeries) {
  SRN_REQUIRE_DATA(dir, "svc2004/Task2");
  absl::StatusOr<std::shared_ptr<const SimilarityModel>> model = LoadModel(SRN_DEFAULT_MODEL_PATH);
  ASSERT_TRUE(model.ok()) << model.status();
  TempDir tmp;
  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      ServerProcess::Start({absl::StrCat("--weights=", SRN_DEFAULT_MODEL_PATH),
                            "--store=:memory:", "--threads=2", "--dtw_fusion=off"},
                           tmp.File("server.log"), CleanEnvironment());
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string address = absl::StrCat("--server=", (*server)->address());

  auto features = [&](const std::string& path) -> Series {
    bool has_pressure = false;
    absl::StatusOr<std::vector<PenSample>> samples = ReadSvc2004File(path, &has_pressure);
    EXPECT_TRUE(samples.ok()) << samples.status();
    if (!samples.ok()) return Series();
    absl::StatusOr<Series> f = ComputeSignatureFeatures(*samples, has_pressure);
    EXPECT_TRUE(f.ok()) << f.status();
    return f.ok() ? *f : Series();
  };
  auto similarity = [&](const Series& a, const Series& b) -> double {
    absl::StatusOr<float> s = (*model)->Similarity(a, b);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : -1.0;
  };

  Tally tally;
  for (int user : {3, 17, 29}) {
    const std::string subject = absl::StrCat("U", user);
    std::vector<Series> refs;
    std::vector<std::string> enroll = {address, "enroll", absl::StrCat("--subject=", subject)};
    for (int s = 1; s <= kRefs; ++s) refs.push_back(features(File(dir, user, s)));
    std::vector<double> mutual;
    for (int a = 0; a < kRefs; ++a) {
      for (int b = a + 1; b < kRefs; ++b) mutual.push_back(similarity(refs[a], refs[b]));
    }
    const double threshold = std::clamp(
        SubjectThreshold(mutual, kNormalizedThreshold, ScoreNormalization::kShift), 0.0, 1.0);
    enroll.push_back(absl::StrFormat("--threshold=%.6f", threshold));
    for (int s = 1; s <= kRefs; ++s) enroll.push_back(File(dir, user, s));
    ProcessResult r = RunSrnctl(enroll, CleanEnvironment());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_THAT(r.out, StartsWith(absl::StrCat("enrolled ", subject, "\t5 references\t")));

    // The other 15 genuine signatures and every other skilled forgery (10).
    for (int s = kRefs + 1; s <= 40; s += s < 20 ? 1 : 2) {
      const bool is_forgery = s > 20;
      const std::string query = File(dir, user, s);
      r = RunSrnctl(
          {address, "verify", absl::StrCat("--subject=", subject), "--fusion=mean", query},
          CleanEnvironment());
      ASSERT_EQ(r.exit_code, 0) << r.err;
      // The server's fused score is the in-process mean similarity to the references.
      const Series q = features(query);
      double mean = 0;
      for (const Series& ref : refs) mean += similarity(q, ref);
      mean /= kRefs;
      EXPECT_NEAR(NumberAfter(r.out, "score ").value_or(-1), mean, 1e-3) << r.out;
      const bool accepted = absl::StartsWith(r.out, "ACCEPTED");
      if (std::abs(mean - threshold) > 1e-3) {
        EXPECT_EQ(accepted, mean >= threshold) << r.out;
      }
      tally.Add(is_forgery, accepted);
    }
  }
  tally.ExpectWithin(kReportedFrr, kReportedFarSkilled, kMargin);
}

// srn-server as it starts with no model flags: the bundled model with its DTW fusion calibration,
// whose score is 0.5 at the cross-validated equal-error point.
class BundledServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<ServerProcess>> server = ServerProcess::Start(
        {"--store=:memory:", "--threads=2"}, tmp_.File("server.log"), CleanEnvironment());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    address_ = absl::StrCat("--server=", server_->address());
  }

  // Enrolls signatures `refs` of `user` as subject U<user>, then verifies signatures `queries`
  // (above 20: skilled forgeries) at the default threshold and tallies the decisions.
  void EnrollAndVerify(const std::string& dir, int user, const std::vector<int>& refs,
                       const std::vector<int>& queries, Tally* tally) {
    const std::string subject = absl::StrCat("--subject=U", user);
    std::vector<std::string> enroll = {address_, "enroll", subject};
    for (int s : refs) enroll.push_back(File(dir, user, s));
    ProcessResult r = RunSrnctl(enroll, CleanEnvironment());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (int s : queries) {
      r = RunSrnctl({address_, "verify", subject, File(dir, user, s)}, CleanEnvironment());
      ASSERT_EQ(r.exit_code, 0) << r.err;
      ASSERT_THAT(r.out, ::testing::HasSubstr("fused with DTW: srn score ")) << r.out;
      EXPECT_THAT(r.out, ::testing::HasSubstr("threshold 0.500000")) << r.out;
      tally->Add(s > 20, absl::StartsWith(r.out, "ACCEPTED"));
    }
  }

  TempDir tmp_;
  std::unique_ptr<ServerProcess> server_;
  std::string address_;
};

// Five references: 4.7% skilled EER cross-validated.
TEST_F(BundledServerTest, FusedWithDtwByDefault) {
  SRN_REQUIRE_DATA(dir, "svc2004/Task2");
  constexpr double kReportedEer = 0.047;
  std::vector<int> refs, queries;
  for (int s = 1; s <= kRefs; ++s) refs.push_back(s);
  for (int s = kRefs + 1; s <= 40; s += s < 20 ? 1 : 2) queries.push_back(s);
  Tally tally;
  for (int user : {3, 17, 29}) EnrollAndVerify(dir, user, refs, queries, &tally);
  tally.ExpectWithin(kReportedEer, kReportedEer, kMargin);
}

// One reference: the DTW distance is divided by the spread predicted from the reference's shape
// (model-info shows the model), 11.9% skilled EER cross-validated. One reference leaves each
// signer's rates far from the pooled ones, so this takes every fifth signer and all of their
// signatures.
TEST_F(BundledServerTest, OneReference) {
  SRN_REQUIRE_DATA(dir, "svc2004/Task2");
  const ProcessResult info = RunSrnctl({address_, "model-info"}, CleanEnvironment());
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_THAT(info.out,
              ::testing::HasSubstr(
                  "one reference: DTW distance divided by the predicted spread -0.423193,"))
      << info.out;
  constexpr double kReportedEer = 0.119;
  std::vector<int> queries;
  for (int s = 2; s <= 40; ++s) queries.push_back(s);
  Tally tally;
  for (int user = 3; user <= 40; user += 5) EnrollAndVerify(dir, user, {1}, queries, &tally);
  tally.ExpectWithin(kReportedEer, kReportedEer, kMargin);
}

}  // namespace
}  // namespace srn::testing
