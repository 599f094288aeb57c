// The newcomer's path, with documented flags only (docs/YOUR_DATA.md): their own series as the
// CSV format, a split file, srn-train, srn-eval --protocol=test on classes the model never saw,
// srn-eval --calibrate for a target false-accept rate, srn-server serving the calibrated model
// and srnctl verifying. The served default threshold is the calibrated one, and its false-accept
// rate on yet other classes is within 2x of the target.

#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/data/csv_dataset.h"
#include "model/data/dataset.h"
#include "tests/client/e2e_harness.h"
#include "model/data/series.h"
#include "tests/testing/synthetic_data.h"

namespace srn::testing {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;

ProcessResult RunTool(const std::vector<std::string>& argv) {
  return RunProcess(argv, CleanEnvironment(), /*timeout_seconds=*/600);
}

// The examples of `data` whose class satisfies `keep`, label names kept.
template <typename Pred>
Dataset Classes(const Dataset& data, Pred keep) {
  return data.Filter([&](const Example& e) { return keep(e.label); });
}

// `classes` gestures named gesture0, gesture1, ..., drawn independently of each other (so any
// set of classes is like any other, as the people or things a deployment meets later are):
// class k's prototype is, per sensor, a random level plus two sinusoids of random frequency,
// phase and amplitude; each of its `per_class` recordings stretches it in time by up to 15% and
// adds noise.
Dataset Gestures(int classes, int per_class, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::normal_distribution<double> noise(0.0, 0.1);
  constexpr int kSensors = 2, kWaves = 2;
  Dataset data{"gestures", {}, {}};
  for (int k = 0; k < classes; ++k) {
    data.label_names.push_back(absl::StrCat("gesture", k));
    double freq[kSensors][kWaves], phase[kSensors][kWaves], amp[kSensors][kWaves];
    double level[kSensors];
    for (int d = 0; d < kSensors; ++d) {
      level[d] = 4.0 * u(rng) - 2.0;
      for (int w = 0; w < kWaves; ++w) {
        freq[d][w] = 0.5 + 2.0 * u(rng);
        phase[d][w] = 6.2831853 * u(rng);
        amp[d][w] = 0.3 + u(rng);
      }
    }
    for (int r = 0; r < per_class; ++r) {
      const double stretch = 0.85 + 0.3 * u(rng);
      const int length = static_cast<int>(30 * stretch);
      Series s(length, kSensors);
      for (int t = 0; t < length; ++t) {
        const double x = static_cast<double>(t) / length;  // the gesture's own time, 0 to 1
        for (int d = 0; d < kSensors; ++d) {
          double v = level[d] + noise(rng);
          for (int w = 0; w < kWaves; ++w) {
            v += amp[d][w] * std::sin(6.2831853 * freq[d][w] * x + phase[d][w]);
          }
          s.mutable_frames()(t, d) = static_cast<float>(v);
        }
      }
      data.examples.push_back(Example{std::move(s), k, false, -1, ""});
    }
  }
  return data;
}

TEST(NewcomerE2eTest, ConvertSplitTrainEvaluateCalibrateServeVerify) {
  TempDir tmp;
  // 240 kinds of gesture, 5 recordings each, 2 sensors. A third of them train (some of those
  // validate), a third calibrate, a third are the classes the deployment meets later.
  const Dataset all = Gestures(240, 5, 21);
  const std::string mine =
      WriteCsvManifest(tmp.File("mine"), Classes(all, [](int c) { return c % 3 != 2; }));
  const std::string later =
      WriteCsvManifest(tmp.File("later"), Classes(all, [](int c) { return c % 3 == 2; }));
  std::string split = "class,part\n";
  for (int c = 0; c < 240; ++c) {
    if (c % 3 == 2) continue;
    const char* part = c % 3 == 1 ? "test" : c < 48 ? "validation" : "train";
    absl::StrAppend(&split, "gesture", c, ",", part, "\n");
  }
  ASSERT_TRUE(WriteFile(tmp.File("split.csv"), split));

  const std::string model = tmp.File("gestures.srnw");
  ProcessResult r = RunTool({SRN_TRAIN_BINARY, "--dataset=" + mine,
                             "--split=" + tmp.File("split.csv"), "--model=srn-a", "--hidden=16",
                             "--epochs=6", "--threads=2", "--eval=false", "--out=" + model});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = RunTool({SRN_EVAL_BINARY, "--model=" + model, "--dataset=" + later, "--protocol=test",
               "--threads=2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, ContainsRegex("RESULT protocol=test .* auc=[0-9.]+"));
  r = RunTool({SRN_EVAL_BINARY, "--model=" + model, "--dataset=" + mine,
               "--split=" + tmp.File("split.csv"), "--protocol=out-of-domain", "--calibrate",
               "--target_far=0.1", "--threads=2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("80 classes never trained on"));
  EXPECT_THAT(r.out, HasSubstr("wrote " + model));

  absl::StatusOr<std::unique_ptr<ServerProcess>> server = ServerProcess::Start(
      {"--weights=" + model, "--store=:memory:", "--threads=2"}, tmp.File("server.log"),
      CleanEnvironment());
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string address = "--server=" + (*server)->address();
  r = RunSrnctl({address, "model-info"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("(the model's calibration (far=0.1, measured on " + mine));
  EXPECT_THAT(r.out, HasSubstr("trained_classes (80): gesture0, gesture102, gesture105"));
  const std::optional<double> threshold = NumberAfter(r.out, "default_threshold: ");
  ASSERT_TRUE(threshold.has_value()) << r.out;

  // Each later class enrolls its first recording; its second tries every other subject (one
  // Identify call at the default threshold counts the subjects that would accept it), and Verify
  // against a few of them shows the default threshold in use.
  absl::StatusOr<Dataset> written = LoadCsvDataset(later);
  ASSERT_TRUE(written.ok()) << written.status();
  std::map<std::string, std::vector<std::string>> files;  // class -> its series files
  for (const Example& e : written->examples) {
    files[written->label_names[e.label]].push_back(e.source);
  }
  ASSERT_EQ(files.size(), 80u);
  for (const auto& [name, own] : files) {
    r = RunSrnctl({address, "enroll", "--subject=" + name, own[0]});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  int trials = 0, accepted = 0, verified = 0;
  for (const auto& [name, own] : files) {
    r = RunSrnctl({address, "identify", "--top_k=80",
                   absl::StrFormat("--threshold=%.6f", *threshold), own[1]});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (const std::string& line : Lines(r.out)) {
      if (line != "no candidates" && !absl::StrContains(line, "\t" + name + "\t")) ++accepted;
    }
    trials += static_cast<int>(files.size()) - 1;
    if (verified++ < 3) {
      r = RunSrnctl({address, "verify", "--subject=" + files.begin()->first, own[1]});
      ASSERT_EQ(r.exit_code, 0) << r.err;
      EXPECT_THAT(r.out, HasSubstr(absl::StrFormat("threshold %.6f", *threshold)));
      EXPECT_THAT(r.out, HasSubstr("threshold from the model's calibration"));
    }
  }
  const double far = static_cast<double>(accepted) / trials;
  EXPECT_GT(far, 0.1 / 2) << accepted << " of " << trials << " impostors accepted";
  EXPECT_LT(far, 0.1 * 2) << accepted << " of " << trials << " impostors accepted";
}

}  // namespace
}  // namespace srn::testing
