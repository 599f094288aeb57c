// What srn-eval measures is what srn-server serves: a tiny signature model is trained by the real
// srn-train, its verification calibration recorded in it by srn-eval --stamp_out, and trials that
// srn-eval --protocol=svc2004-cv scores as Verify would (--served_trials) are enrolled and
// verified through the real srn-server and srnctl. The scores must be equal to the bit, with the
// DTW fusion and without, with one reference and with five; and for a learned verifier (DTW
// over a frame-triplet model's states), on the cross-dataset protocol's trials.

#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/client/e2e_harness.h"
#include "tests/testing/test_data.h"

namespace srn::testing {
namespace {

struct ServedTrial {
  int refs = 0;
  std::string kind;
  std::string query;
  std::vector<std::string> references;
  float score = 0;
};

// Up to `per_kind` trials of each refs count and kind from srn-eval's --served_trials CSV.
std::vector<ServedTrial> ReadTrials(const std::string& path, int per_kind) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "fold,refs,draw,signer,label,kind,query,references,score");
  std::map<std::string, int> taken;
  std::vector<ServedTrial> out;
  while (std::getline(in, line)) {
    const std::vector<std::string> f = absl::StrSplit(line, ',');
    if (f.size() != 9) {
      ADD_FAILURE() << "bad served-trials line: " << line;
      break;
    }
    ServedTrial t;
    EXPECT_TRUE(absl::SimpleAtoi(f[1], &t.refs));
    t.kind = f[5];
    if (++taken[absl::StrCat(t.refs, t.kind)] > per_kind) continue;
    t.query = f[6];
    t.references = absl::StrSplit(f[7], ';');
    EXPECT_TRUE(absl::SimpleAtof(f[8], &t.score)) << f[8];
    out.push_back(std::move(t));
  }
  return out;
}

// srn-train and srn-eval run for seconds alone, longer beside other tests on two cores.
ProcessResult RunTool(const std::vector<std::string>& argv) {
  return RunProcess(argv, CleanEnvironment(), /*timeout_seconds=*/600);
}

// The "score" of srnctl verify --json (protobuf's JSON prints floats so that they read back
// exactly).
std::optional<float> JsonScore(const std::string& json) {
  const size_t at = json.find("\"score\":");
  if (at == std::string::npos) return std::nullopt;
  float value = 0;
  const std::string rest = json.substr(at + 8);
  const size_t end = rest.find_first_of(",\n}");
  if (!absl::SimpleAtof(absl::StripAsciiWhitespace(rest.substr(0, end)), &value)) {
    return std::nullopt;
  }
  return value;
}

// Enrolls each trial's references through a real srn-server serving `model` (with `flags`) and
// srnctl, verifies its query, and expects Verify's score to be srn-eval's to the bit.
void ExpectVerifyScoresAsEvaluated(const std::string& model,
                                   const std::vector<std::string>& server_flags,
                                   const std::vector<ServedTrial>& trials, TempDir& tmp,
                                   const std::string& name) {
  std::vector<std::string> flags = {"--weights=" + model, "--store=:memory:", "--threads=2"};
  flags.insert(flags.end(), server_flags.begin(), server_flags.end());
  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      ServerProcess::Start(flags, tmp.File(name + "-server.log"), CleanEnvironment());
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string address = "--server=" + (*server)->address();
  int subject = 0;
  for (const ServedTrial& t : trials) {
    const std::string id = absl::StrCat("trial", ++subject);
    std::vector<std::string> enroll = {address, "enroll", "--subject=" + id};
    enroll.insert(enroll.end(), t.references.begin(), t.references.end());
    ProcessResult r = RunSrnctl(enroll);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = RunSrnctl({address, "verify", "--json", "--subject=" + id, t.query});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::optional<float> served = JsonScore(r.out);
    ASSERT_TRUE(served.has_value()) << r.out;
    EXPECT_EQ(*served, t.score) << t.kind << " trial with " << t.refs << " reference(s), query "
                                << t.query << ": srn-eval " << t.score << ", Verify " << *served
                                << "\n" << r.out;
  }
}

TEST(EvalServeEqualityTest, SrnEvalScoresTrialsExactlyAsVerifyDoes) {
  SRN_REQUIRE_DATA(data, "svc2004/Task2");
  TempDir tmp;
  const std::string data_dir = data.substr(0, data.size() - std::string("/svc2004/Task2").size());
  const std::string tiny = tmp.File("tiny.srnw");
  ProcessResult r = RunTool({SRN_TRAIN_BINARY, "--dataset=svc2004", "--data_dir=" + data_dir,
                         "--protocol=svc2004-cv", "--fold=0", "--model=srn-a", "--hidden=8",
                         "--epochs=1", "--pairs_per_epoch=500", "--eval=false", "--threads=2",
                         "--out=" + tiny});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  // A calibration of the bundled recipe's form; its numbers only need to make both parts count.
  const std::string calibrated = tmp.File("calibrated.srnw");
  r = RunTool({SRN_EVAL_BINARY, "--model=" + tiny, "--stamp_out=" + calibrated,
           "--verification=dtw_fusion=2:-2.00308,4:-4.95391 "
           "dtw_spread=-0.423193,-0.255644,-0.693426,0.0868051,-1.27963,-0.0237914"});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  struct Case {
    std::string name;
    std::vector<std::string> server_flags;
    std::vector<std::string> eval_flags;
  };
  const std::vector<Case> cases = {
      {"fused", {}, {}},
      {"srn-only", {"--dtw_fusion=off"}, {"--verification=dtw_fusion=0:0,0:0"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string csv = tmp.File(c.name + "-trials.csv");
    std::vector<std::string> eval = {SRN_EVAL_BINARY, "--model=" + calibrated,
                                     "--dataset=svc2004", "--data_dir=" + data_dir,
                                     "--protocol=svc2004-cv", "--refs=1,5", "--draws=1",
                                     "--threads=2",
                                     "--served_trials=" + csv};
    eval.insert(eval.end(), c.eval_flags.begin(), c.eval_flags.end());
    r = RunTool(eval);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::vector<ServedTrial> trials = ReadTrials(csv, 2);
    ASSERT_EQ(trials.size(), 12u);  // 2 of each kind, 1 and 5 references

    ExpectVerifyScoresAsEvaluated(calibrated, c.server_flags, trials, tmp, c.name);
  }
}

// The learned verifier: a tiny frame-triplet model trained on SVC2004 Task 1, its states
// calibration stamped in it (the DTW verifier weighted in with five references, not with one),
// and trials of the cross-dataset protocol on Task 2 signers it never saw.
TEST(EvalServeEqualityTest, StatesModelScoresCrossDatasetTrialsExactlyAsVerifyDoes) {
  SRN_REQUIRE_DATA(task2, "svc2004/Task2");
  SRN_REQUIRE_DATA(task1, "svc2004/Task1");
  TempDir tmp;
  const std::string data_dir = task2.substr(0, task2.size() - std::string("/svc2004/Task2").size());
  const std::string tiny = tmp.File("tiny-states.srnw");
  ProcessResult r = RunTool({SRN_TRAIN_BINARY, "--dataset=svc2004-task1", "--data_dir=" + data_dir,
                             "--protocol=signers", "--objective=frame-triplet", "--model=gru-a",
                             "--hidden=4", "--frame_norm=l2", "--center_series", "--epochs=1",
                             "--triplets_per_epoch=32", "--batch_triplets=8",
                             "--frame_cost=euclidean", "--threads=2", "--out=" + tiny});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string calibrated = tmp.File("calibrated-states.srnw");
  r = RunTool({SRN_EVAL_BINARY, "--model=" + tiny, "--stamp_out=" + calibrated,
               "--verification=learned=states-dtw states_band=0.3 states_cost=euclidean "
               "states_spread=-1.18523,-0.129256,-0.791275,0.130316,-1.8198,-0.775673 "
               "dtw_fusion=0:-1.6,1:-2.4 "
               "dtw_spread=-0.423193,-0.255644,-0.693426,0.0868051,-1.27963,-0.0237914"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string csv = tmp.File("states-trials.csv");
  r = RunTool({SRN_EVAL_BINARY, "--model=" + calibrated, "--dataset=svc2004",
               "--data_dir=" + data_dir, "--protocol=cross-dataset", "--signers=10",
               "--refs=1,5", "--draws=1", "--threads=2", "--served_trials=" + csv});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<ServedTrial> trials = ReadTrials(csv, 2);
  ASSERT_EQ(trials.size(), 12u);  // 2 of each kind, 1 and 5 references
  ExpectVerifyScoresAsEvaluated(calibrated, {}, trials, tmp, "states");
}

}  // namespace
}  // namespace srn::testing
