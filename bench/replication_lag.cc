// srn-replication-bench: how soon a subject enrolled on one srn-server is served by another
// server on the same PostgreSQL store (issue 19: p99 under 100 ms on loopback). For each of
// --subjects new subjects: Enroll on --a; once acknowledged, GetSubject on --b in a tight loop
// until it answers; the lag is from the acknowledgement to that answer. Prints the lag's p50,
// p99 and maximum as one RESULT line. bench/replication_lag.sh starts PostgreSQL and the two
// servers; run outside CI (docs/BENCHMARKS.md).

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "grpcpp/create_channel.h"
#include "srn/v1/similarity.grpc.pb.h"

ABSL_FLAG(std::string, a, "127.0.0.1:50051", "the server that enrolls");
ABSL_FLAG(std::string, b, "127.0.0.1:50052", "the server that must then serve the subject");
ABSL_FLAG(int, subjects, 500, "subjects enrolled, one at a time");
ABSL_FLAG(std::string, prefix, "lag", "prefix of the subject ids");

namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double Percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  return v[i];
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  auto a = srn::v1::SimilarityService::NewStub(
      grpc::CreateChannel(absl::GetFlag(FLAGS_a), grpc::InsecureChannelCredentials()));
  auto b = srn::v1::SimilarityService::NewStub(
      grpc::CreateChannel(absl::GetFlag(FLAGS_b), grpc::InsecureChannelCredentials()));
  std::mt19937_64 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<double> lags;
  int misses = 0;
  for (int i = 0; i < absl::GetFlag(FLAGS_subjects); ++i) {
    srn::v1::EnrollRequest enroll;
    enroll.set_subject_id(absl::StrFormat("%s-%06d", absl::GetFlag(FLAGS_prefix), i));
    // A short pen trajectory: the bundled model's input.
    srn::v1::PenTrajectory* pen = enroll.add_references()->mutable_pen();
    for (int t = 0; t < 120; ++t) {
      pen->add_x(100 * std::sin(0.05f * t) + normal(rng));
      pen->add_y(50 * std::cos(0.08f * t) + normal(rng));
      pen->add_t_ms(10 * t);
    }
    srn::v1::EnrollResponse enrolled;
    grpc::ClientContext enroll_ctx;
    enroll_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    const grpc::Status s = a->Enroll(&enroll_ctx, enroll, &enrolled);
    if (!s.ok()) {
      std::fprintf(stderr, "enroll on --a failed: %s\n", s.error_message().c_str());
      return 1;
    }
    const auto acknowledged = Clock::now();
    srn::v1::GetSubjectRequest get;
    get.set_subject_id(enroll.subject_id());
    while (true) {
      srn::v1::Subject subject;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      const grpc::Status g = b->GetSubject(&ctx, get, &subject);
      if (g.ok()) break;
      if (g.error_code() != grpc::StatusCode::NOT_FOUND) {
        std::fprintf(stderr, "get on --b failed: %s\n", g.error_message().c_str());
        return 1;
      }
      ++misses;
      if (Clock::now() - acknowledged > std::chrono::seconds(30)) {
        std::fprintf(stderr, "--b did not serve %s within 30 s\n", get.subject_id().c_str());
        return 1;
      }
    }
    lags.push_back(Ms(Clock::now() - acknowledged));
  }
  std::printf("RESULT replication_lag subjects=%zu p50_ms=%.2f p99_ms=%.2f max_ms=%.2f "
              "not_found_polls=%d\n",
              lags.size(), Percentile(lags, 0.5), Percentile(lags, 0.99),
              *std::max_element(lags.begin(), lags.end()), misses);
  return 0;
}
