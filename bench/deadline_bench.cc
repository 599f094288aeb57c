// srn-deadline-bench: how long the serving core keeps working after a call's deadline, the
// worst case of issue 20: Verify against a subject whose references are 20,000 pen samples each
// (the request limit), with the bundled model. Each call gets a deadline a random 1-200 ms after
// it starts; the time from that deadline to the call's return is the overrun (what the server
// spends on an abandoned call). Prints the overrun's p50, p99 and maximum, and how long the same
// Verify takes when nobody abandons it. Run outside CI (docs/BENCHMARKS.md):
//
//   build/bench/srn-deadline-bench [--weights=deploy/models/default.srnw] [--calls=200]

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "base/cancellation.h"
#include "server/serving_model.h"
#include "server/similarity_core.h"
#include "server/subject_store.h"

ABSL_FLAG(std::string, weights, "deploy/models/default.srnw", "the model (a signature model)");
ABSL_FLAG(int, calls, 200, "Verify calls with a deadline");
ABSL_FLAG(int, references, 8, "references of the subject, each --samples pen samples");
ABSL_FLAG(int, samples, 20000, "pen samples per reference and per query (the request limit)");

namespace {

using Clock = std::chrono::steady_clock;

// Stops the work once `deadline` has passed, as CallCancellation does for a gRPC call.
class DeadlineCancellation final : public srn::Cancellation {
 public:
  explicit DeadlineCancellation(Clock::time_point deadline) : deadline_(deadline) {}
  absl::Status Check() const override {
    return Clock::now() >= deadline_ ? absl::DeadlineExceededError("deadline passed")
                                     : absl::OkStatus();
  }

 private:
  const Clock::time_point deadline_;
};

// A long pen trajectory at 100 Hz: a slowly drifting Lissajous figure, one stroke, `seed` shifts
// its phase a little.
srn::v1::SeriesInput LongSignature(int samples, int seed) {
  srn::v1::SeriesInput input;
  srn::v1::PenTrajectory* pen = input.mutable_pen();
  for (int i = 0; i < samples; ++i) {
    const double t = i * 0.01;
    pen->add_x(std::sin(1.3 * t + 0.05 * seed) + 0.001 * t);
    pen->add_y(std::sin(2.1 * t) * std::cos(0.2 * t));
    pen->add_t_ms(i * 10.0);
    pen->add_pressure(0.5 + 0.4 * std::sin(0.7 * t));
  }
  return input;
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(std::ceil(p * v.size())) - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  absl::StatusOr<std::shared_ptr<const srn::ServingModel>> model =
      srn::LoadServingModel(absl::GetFlag(FLAGS_weights), "");
  if (!model.ok()) {
    std::cerr << "srn-deadline-bench: " << model.status() << "\n";
    return 1;
  }
  // No cost budget: what is measured is how soon abandoned work stops, not the budget's refusal.
  srn::CoreOptions options;
  options.max_dtw_cells = std::numeric_limits<int64_t>::max();
  srn::SimilarityCore core(*model, srn::NewInMemorySubjectStore(), options, nullptr);
  srn::v1::EnrollRequest enroll;
  enroll.set_subject_id("long");
  for (int r = 0; r < absl::GetFlag(FLAGS_references); ++r) {
    *enroll.add_references() = LongSignature(absl::GetFlag(FLAGS_samples), r);
  }
  auto start = Clock::now();
  if (absl::StatusOr<srn::v1::EnrollResponse> e = core.Enroll(enroll); !e.ok()) {
    std::cerr << "srn-deadline-bench: enroll: " << e.status() << "\n";
    return 1;
  }
  const double enroll_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();

  srn::v1::VerifyRequest verify;
  verify.set_subject_id("long");
  *verify.mutable_query() = LongSignature(absl::GetFlag(FLAGS_samples), 99);
  start = Clock::now();
  if (absl::StatusOr<srn::v1::VerifyResponse> v = core.Verify(verify); !v.ok()) {
    std::cerr << "srn-deadline-bench: verify: " << v.status() << "\n";
    return 1;
  }
  const double verify_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();

  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> after_ms(1.0, 200.0);
  std::vector<double> overrun_ms;
  int stopped = 0;
  for (int i = 0; i < absl::GetFlag(FLAGS_calls); ++i) {
    const Clock::time_point begin = Clock::now();
    const Clock::time_point deadline =
        begin + std::chrono::microseconds(static_cast<int64_t>(after_ms(rng) * 1000));
    const absl::StatusOr<srn::v1::VerifyResponse> v =
        core.Verify(verify, DeadlineCancellation(deadline));
    const Clock::time_point end = Clock::now();
    if (v.status().code() == absl::StatusCode::kDeadlineExceeded) ++stopped;
    if (end > deadline) {
      overrun_ms.push_back(std::chrono::duration<double, std::milli>(end - deadline).count());
    }
  }
  std::cout << absl::StrFormat(
      "enroll %d x %d samples: %.0f ms; verify (not abandoned): %.1f ms\n",
      absl::GetFlag(FLAGS_references), absl::GetFlag(FLAGS_samples), enroll_ms, verify_ms);
  if (overrun_ms.empty()) {
    std::cout << "no call outlived its deadline\n";
    return 0;
  }
  std::cout << absl::StrFormat(
      "RESULT deadline_overrun calls=%d stopped=%d past_deadline=%d p50_ms=%.2f p99_ms=%.2f "
      "max_ms=%.2f\n",
      absl::GetFlag(FLAGS_calls), stopped, overrun_ms.size(), Percentile(overrun_ms, 0.5),
      Percentile(overrun_ms, 0.99), *std::max_element(overrun_ms.begin(), overrun_ms.end()));
  return 0;
}
