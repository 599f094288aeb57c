// Peer check of the encoder against PyTorch: tests/model/nn/testdata/torch_golden.txt holds, for
// every model family, inputs, parameters and what PyTorch's own nn.RNN / nn.GRU / nn.LSTM modules
// and autograd computed from them (embeddings, pair loss, gradient of the loss w.r.t. every
// parameter). Regenerate it with
//   /usr/bin/python3 bench/torch_reference.py > tests/model/nn/testdata/torch_golden.txt
// The file is committed, so this test never skips.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "model/nn/architecture.h"
#include "model/nn/network.h"
#include "model/nn/pair_loss.h"
#include "model/nn/parameters.h"
#include "model/data/series.h"
#include "base/status_macros.h"

#ifndef SRN_TESTDATA_DIR
#error "SRN_TESTDATA_DIR must name tests/model/nn/testdata (set in tests/model/CMakeLists.txt)"
#endif

namespace srn {
namespace {

constexpr char kGoldenFile[] = SRN_TESTDATA_DIR "/torch_golden.txt";

// Double precision must agree with PyTorch's float64 to rounding; float only to float precision.
constexpr double kDoubleTolerance = 1e-9;
constexpr double kFloatTolerance = 1e-5;
// Relative errors are taken against max(|expected|, floor): entries that are nearly zero through
// cancellation (gradients of 1e-10 exist here) carry rounding error relative to the terms that
// cancelled, not to themselves, so below the floor the comparison becomes absolute. The double
// floor is tiny (absolute 1e-15 below it); float embeddings carry ~1e-7 absolute error whatever
// their size, so below 0.1 they are held to an absolute 1e-6.
constexpr double kDoubleFloor = 1e-6;
constexpr double kFloatFloor = 0.1;

struct TensorShape {
  std::string name;
  int rows = 0;
  int cols = 0;
};

// One case of the golden file; see bench/torch_reference.py for the format.
struct GoldenCase {
  std::string name;
  std::string family;
  int input_dims = 0;
  int hidden = 0;
  int layers = 0;
  std::vector<TensorShape> layout;
  std::vector<Series> series;
  std::vector<Pair> pairs;
  double scale = 0;
  std::vector<double> params;
  int emb_rows = 0;
  int emb_cols = 0;
  std::vector<double> embeddings;  // row-major, batch order
  double loss = 0;
  std::vector<double> grad;
};

// Reads the whitespace-separated tokens of one record, with errors that name file and line.
class Record {
 public:
  Record(std::string where, std::vector<std::string> tokens)
      : where_(std::move(where)), tokens_(std::move(tokens)) {}

  const std::string& key() const { return tokens_[0]; }
  size_t remaining() const { return tokens_.size() - next_; }

  absl::Status Error(absl::string_view what) const {
    return absl::DataLossError(absl::StrCat(where_, ": '", key(), "' record: ", what));
  }
  absl::StatusOr<std::string> Word() {
    if (next_ >= tokens_.size()) return Error("too few values");
    return tokens_[next_++];
  }
  absl::StatusOr<int> Int() {
    SRN_ASSIGN_OR_RETURN(std::string word, Word());
    int v = 0;
    if (!absl::SimpleAtoi(word, &v)) return Error(absl::StrCat("'", word, "' is not an integer"));
    return v;
  }
  absl::StatusOr<int> Count() {
    SRN_ASSIGN_OR_RETURN(int v, Int());
    if (v < 0 || static_cast<size_t>(v) > remaining()) {
      return Error(absl::StrCat("count ", v, " does not fit the ", remaining(), " values left"));
    }
    return v;
  }
  absl::StatusOr<double> Double() {
    SRN_ASSIGN_OR_RETURN(std::string word, Word());
    double v = 0;
    if (!absl::SimpleAtod(word, &v) || !std::isfinite(v)) {
      return Error(absl::StrCat("'", word, "' is not a finite number"));
    }
    return v;
  }
  absl::StatusOr<std::vector<double>> Doubles(int64_t n) {
    std::vector<double> out(n);
    for (double& v : out) {
      SRN_ASSIGN_OR_RETURN(v, Double());
    }
    return out;
  }
  // "key=value" with the given key.
  absl::StatusOr<std::string> Field(absl::string_view field) {
    SRN_ASSIGN_OR_RETURN(std::string word, Word());
    const std::string prefix = absl::StrCat(field, "=");
    if (word.rfind(prefix, 0) != 0)
      return Error(absl::StrCat("expected ", prefix, "..., got ", word));
    return word.substr(prefix.size());
  }
  absl::StatusOr<int> IntField(absl::string_view field) {
    SRN_ASSIGN_OR_RETURN(std::string value, Field(field));
    int v = 0;
    if (!absl::SimpleAtoi(value, &v))
      return Error(absl::StrCat(field, "=", value, " is not an integer"));
    return v;
  }
  absl::Status Done() const {
    if (remaining() != 0) return Error(absl::StrCat(remaining(), " unexpected trailing values"));
    return absl::OkStatus();
  }

 private:
  std::string where_;
  std::vector<std::string> tokens_;
  size_t next_ = 1;
};

absl::Status ParseRecord(Record* rec, GoldenCase* c) {
  const std::string& key = rec->key();
  if (key == "layout") {
    SRN_ASSIGN_OR_RETURN(int n, rec->Int());
    for (int i = 0; i < n; ++i) {
      TensorShape t;
      SRN_ASSIGN_OR_RETURN(t.name, rec->Word());
      SRN_ASSIGN_OR_RETURN(t.rows, rec->Int());
      SRN_ASSIGN_OR_RETURN(t.cols, rec->Int());
      c->layout.push_back(std::move(t));
    }
  } else if (key == "series") {
    SRN_ASSIGN_OR_RETURN(int len, rec->Int());
    SRN_ASSIGN_OR_RETURN(int dims, rec->Int());
    if (len <= 0 || dims <= 0) return rec->Error("series shape must be positive");
    SRN_ASSIGN_OR_RETURN(std::vector<double> v, rec->Doubles(static_cast<int64_t>(len) * dims));
    Series s(len, dims);
    for (size_t i = 0; i < v.size(); ++i) {
      // A Series holds floats; the double comparison is only exact if PyTorch saw the same values.
      const float f = static_cast<float>(v[i]);
      if (static_cast<double>(f) != v[i]) {
        return rec->Error(absl::StrCat("value ", i, " is not exactly a float32"));
      }
      s.mutable_frames().data()[i] = f;
    }
    c->series.push_back(std::move(s));
  } else if (key == "pairs") {
    SRN_ASSIGN_OR_RETURN(int n, rec->Int());
    for (int i = 0; i < n; ++i) {
      Pair p;
      SRN_ASSIGN_OR_RETURN(p.a, rec->Int());
      SRN_ASSIGN_OR_RETURN(p.b, rec->Int());
      SRN_ASSIGN_OR_RETURN(p.label, rec->Int());
      c->pairs.push_back(p);
    }
  } else if (key == "scale") {
    SRN_ASSIGN_OR_RETURN(c->scale, rec->Double());
  } else if (key == "params") {
    SRN_ASSIGN_OR_RETURN(int n, rec->Count());
    SRN_ASSIGN_OR_RETURN(c->params, rec->Doubles(n));
  } else if (key == "embeddings") {
    SRN_ASSIGN_OR_RETURN(c->emb_rows, rec->Int());
    SRN_ASSIGN_OR_RETURN(c->emb_cols, rec->Int());
    if (c->emb_rows < 0 || c->emb_cols < 0) return rec->Error("negative shape");
    SRN_ASSIGN_OR_RETURN(c->embeddings,
                         rec->Doubles(static_cast<int64_t>(c->emb_rows) * c->emb_cols));
  } else if (key == "loss") {
    SRN_ASSIGN_OR_RETURN(c->loss, rec->Double());
  } else if (key == "grad") {
    SRN_ASSIGN_OR_RETURN(int n, rec->Count());
    SRN_ASSIGN_OR_RETURN(c->grad, rec->Doubles(n));
  } else {
    return rec->Error("unknown record");
  }
  return rec->Done();
}

// Parses the golden file: NotFound if it is missing, DataLoss (with file:line) if malformed.
absl::StatusOr<std::vector<GoldenCase>> ParseGolden(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open golden file ", path));
  std::vector<GoldenCase> cases;
  bool open = false;
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    std::vector<std::string> tokens =
        absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (tokens.empty() || tokens[0][0] == '#') continue;
    Record rec(absl::StrCat(path, ":", line_no), std::move(tokens));
    if (rec.key() == "case") {
      if (open) return rec.Error("previous case has no 'end'");
      GoldenCase c;
      SRN_ASSIGN_OR_RETURN(c.name, rec.Word());
      SRN_ASSIGN_OR_RETURN(c.family, rec.Field("family"));
      SRN_ASSIGN_OR_RETURN(c.input_dims, rec.IntField("in"));
      SRN_ASSIGN_OR_RETURN(c.hidden, rec.IntField("hidden"));
      SRN_ASSIGN_OR_RETURN(c.layers, rec.IntField("layers"));
      SRN_RETURN_IF_ERROR(rec.Done());
      cases.push_back(std::move(c));
      open = true;
    } else if (rec.key() == "end") {
      if (!open) return rec.Error("no case to end");
      SRN_RETURN_IF_ERROR(rec.Done());
      open = false;
    } else {
      if (!open) return rec.Error("outside a case");
      SRN_RETURN_IF_ERROR(ParseRecord(&rec, &cases.back()));
    }
  }
  if (open) return absl::DataLossError(absl::StrCat(path, ": last case has no 'end'"));
  return cases;
}

// The parsed golden file, read once; a parse error is kept so that every test can report it.
const absl::StatusOr<std::vector<GoldenCase>>& Golden() {
  static const auto* const golden =
      new absl::StatusOr<std::vector<GoldenCase>>(ParseGolden(kGoldenFile));
  return *golden;
}

// The named case, or a failure that says why there is none.
absl::StatusOr<const GoldenCase*> FindCase(const std::string& name) {
  if (!Golden().ok()) return Golden().status();
  for (const GoldenCase& c : *Golden()) {
    if (c.name == name) return &c;
  }
  return absl::NotFoundError(absl::StrCat("case ", name, " missing from ", kGoldenFile));
}

// The worst relative error over a block of values, and where it was.
struct Worst {
  double error = 0;
  int64_t index = -1;
  double actual = 0;
  double expected = 0;
};

template <typename T>
Worst Compare(const T* actual, const std::vector<double>& expected, double floor) {
  Worst w;
  for (size_t i = 0; i < expected.size(); ++i) {
    const double a = static_cast<double>(actual[i]);
    const double e = expected[i];
    const double err = std::abs(a - e) / std::max(std::abs(e), floor);
    if (!(err <= w.error)) w = Worst{err, static_cast<int64_t>(i), a, e};  // NaN counts as worst
  }
  return w;
}

// "l0.A[3,2]" for a flat parameter index.
std::string ParamName(const ParameterLayout& layout, int64_t i) {
  for (const TensorSpec& t : layout.tensors()) {
    if (i >= t.offset && i < t.offset + t.size()) {
      return absl::StrCat(t.name, "[", (i - t.offset) / t.cols, ",", (i - t.offset) % t.cols, "]");
    }
  }
  return absl::StrCat("#", i);
}

// All 17 digits: the values being told apart agree in the first nine or more.
std::string Full(double x) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.17g", x);
  return buf;
}

std::string Describe(const Worst& w, const std::string& where) {
  return absl::StrCat("worst relative error ", w.error, " at ", where, ": got ", Full(w.actual),
                      ", PyTorch ", Full(w.expected));
}

std::vector<const Series*> Pointers(const std::vector<Series>& v) {
  std::vector<const Series*> p;
  for (const Series& s : v) p.push_back(&s);
  return p;
}

const std::vector<std::string> kCaseNames = {
    "srn-a",  "srn-l",  "sn-a",     "sn-l",          "gru-a",         "gru-l",
    "lstm-a", "lstm-l", "logistic", "srn-a.2layers", "gru-l.2layers", "lstm-a.2layers"};

TEST(TorchGoldenTest, FileHoldsEveryCaseOnce) {
  ASSERT_TRUE(Golden().ok()) << Golden().status();
  std::multiset<std::string> names;
  for (const GoldenCase& c : *Golden()) names.insert(c.name);
  EXPECT_EQ(names, std::multiset<std::string>(kCaseNames.begin(), kCaseNames.end()));
}

TEST(TorchGoldenTest, MalformedFilesAreDataLossWithLine) {
  const std::string path = ::testing::TempDir() + "/torch_golden_bad.txt";
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"# header\ncase x family=srn-a in=3 hidden=4 layers=1\nparams 3 0.1 0.2\nend\n", ":3:"},
      {"case x family=srn-a in=3 hidden=4 layers=1\nseries 1 1 0.5\n", "no 'end'"},
      {"case x family=srn-a in=3 hidden=4 layers=1\nseries 1 1 0.1000000000000000001\nend\n",
       "float32"},
      {"loss 1\n", ":1:"},
      {"case x family=srn-a in=three hidden=4 layers=1\nend\n", "in=three"},
  };
  for (const auto& [text, message] : bad) {
    std::ofstream(path) << text;
    const absl::StatusOr<std::vector<GoldenCase>> parsed = ParseGolden(path);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kDataLoss) << text;
    EXPECT_NE(parsed.status().message().find(message), absl::string_view::npos)
        << parsed.status() << " should mention " << message;
  }
  EXPECT_EQ(ParseGolden(path + ".missing").status().code(), absl::StatusCode::kNotFound);
}

class TorchReferenceTest : public ::testing::TestWithParam<std::string> {};

TEST_P(TorchReferenceTest, MatchesPyTorch) {
  const absl::StatusOr<const GoldenCase*> found = FindCase(GetParam());
  ASSERT_TRUE(found.ok()) << found.status();
  const GoldenCase* c = *found;

  absl::StatusOr<Architecture> parsed_arch = ParseFamily(c->family);
  ASSERT_TRUE(parsed_arch.ok()) << parsed_arch.status();
  Architecture arch = *parsed_arch;
  arch.input_dims = c->input_dims;
  arch.hidden = c->hidden;
  arch.layers = c->layers;
  ASSERT_TRUE(arch.Validate().ok()) << arch.Validate();
  ASSERT_EQ(arch.FamilyName(), c->family);

  // The script's idea of our flat layout must be ours, or every comparison below is meaningless.
  const ParameterLayout layout(arch);
  ASSERT_EQ(layout.tensors().size(), c->layout.size());
  for (size_t i = 0; i < c->layout.size(); ++i) {
    EXPECT_EQ(layout.tensors()[i].name, c->layout[i].name) << "tensor " << i;
    EXPECT_EQ(layout.tensors()[i].rows, c->layout[i].rows) << c->layout[i].name;
    EXPECT_EQ(layout.tensors()[i].cols, c->layout[i].cols) << c->layout[i].name;
  }
  ASSERT_EQ(static_cast<int64_t>(c->params.size()), layout.total_size());
  ASSERT_EQ(c->grad.size(), c->params.size());
  ASSERT_EQ(c->emb_rows, static_cast<int>(c->series.size()));
  ASSERT_EQ(c->emb_cols, arch.embedding_dims());
  for (const Series& s : c->series) ASSERT_EQ(s.dims(), arch.input_dims);
  for (const Pair& p : c->pairs) {
    ASSERT_TRUE(p.a >= 0 && p.a < c->emb_rows && p.b >= 0 && p.b < c->emb_rows);
  }
  const std::vector<const Series*> batch = Pointers(c->series);

  // Double precision: forward, loss and full gradient.
  Network<double> net(arch, layout);
  Network<double>::Workspace ws;
  RowMatrixT<double> emb, d_emb;
  net.Forward(c->params.data(), batch, 0.0, nullptr, &ws, &emb);
  std::vector<double> grad(c->params.size(), 0.0);
  const double loss =
      PairLoss<double>(c->params.data(), layout, emb, c->pairs, c->scale, &d_emb, grad.data());
  net.Backward(c->params.data(), d_emb, &ws, grad.data());

  const Worst emb_worst = Compare(emb.data(), c->embeddings, kDoubleFloor);
  EXPECT_LE(emb_worst.error, kDoubleTolerance)
      << c->name << " embeddings: "
      << Describe(emb_worst, absl::StrCat("series ", emb_worst.index / c->emb_cols, " unit ",
                                          emb_worst.index % c->emb_cols));
  const Worst loss_worst = Compare(&loss, {c->loss}, kDoubleFloor);
  EXPECT_LE(loss_worst.error, kDoubleTolerance)
      << c->name << " loss: " << Describe(loss_worst, "loss");
  const Worst grad_worst = Compare(grad.data(), c->grad, kDoubleFloor);
  EXPECT_LE(grad_worst.error, kDoubleTolerance)
      << c->name << " gradient: " << Describe(grad_worst, ParamName(layout, grad_worst.index));

  // Inference (Embed) is the same computation as the training forward pass.
  RowMatrixT<double> embedded;
  net.Embed(c->params.data(), batch, &ws, &embedded);
  const Worst embed_worst = Compare(embedded.data(), c->embeddings, kDoubleFloor);
  EXPECT_LE(embed_worst.error, kDoubleTolerance)
      << c->name << " Embed: " << Describe(embed_worst, "Embed");

  // Single precision, as in production.
  std::vector<float> fparams(c->params.begin(), c->params.end());
  Network<float> fnet(arch, layout);
  Network<float>::Workspace fws;
  RowMatrix femb;
  fnet.Embed(fparams.data(), batch, &fws, &femb);
  const Worst float_worst = Compare(femb.data(), c->embeddings, kFloatFloor);
  EXPECT_LE(float_worst.error, kFloatTolerance)
      << c->name << " float embeddings: " << Describe(float_worst, "float Embed");

  RecordProperty("worst_embedding_error", absl::StrCat(emb_worst.error));
  RecordProperty("loss_error", absl::StrCat(loss_worst.error));
  RecordProperty("worst_gradient_error", absl::StrCat(grad_worst.error));
  RecordProperty("worst_float_embedding_error", absl::StrCat(float_worst.error));
}

// The comparison is sensitive to the cell's gate order: feeding the network the golden parameters
// with two gate blocks exchanged (in W, A, b and b_hh of every layer) must miss PyTorch's
// embeddings by far more than the tolerance, for every pair of gates of the GRU and LSTM cases.
class GateOrderTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GateOrderTest, SwappedGateBlocksAreDetected) {
  const absl::StatusOr<const GoldenCase*> found = FindCase(GetParam());
  ASSERT_TRUE(found.ok()) << found.status();
  const GoldenCase* c = *found;
  Architecture arch = *ParseFamily(c->family);
  ASSERT_NE(arch.cell, CellType::kRelu) << "relu cells have a single gate block";
  arch.input_dims = c->input_dims;
  arch.hidden = c->hidden;
  arch.layers = c->layers;
  const ParameterLayout layout(arch);
  ASSERT_EQ(static_cast<int64_t>(c->params.size()), layout.total_size());
  const int h = arch.hidden;
  const std::vector<const Series*> batch = Pointers(c->series);
  Network<double> net(arch, layout);
  Network<double>::Workspace ws;
  for (int g0 = 0; g0 < arch.gates(); ++g0) {
    for (int g1 = g0 + 1; g1 < arch.gates(); ++g1) {
      std::vector<double> params = c->params;
      for (const TensorSpec& t : layout.tensors()) {
        if (t.name == "v" || t.name == "c") continue;
        for (int i = 0; i < h; ++i) {
          for (int j = 0; j < t.cols; ++j) {
            std::swap(params[t.offset + static_cast<int64_t>(g0 * h + i) * t.cols + j],
                      params[t.offset + static_cast<int64_t>(g1 * h + i) * t.cols + j]);
          }
        }
      }
      RowMatrixT<double> emb;
      net.Embed(params.data(), batch, &ws, &emb);
      EXPECT_GT(Compare(emb.data(), c->embeddings, kDoubleFloor).error, 1e3 * kDoubleTolerance)
          << c->name << ": gates " << g0 << " and " << g1 << " exchanged went unnoticed";
    }
  }
}

std::string CaseTestName(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param;
  for (char& ch : name) {
    if (ch == '-' || ch == '.') ch = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(AllFamilies, TorchReferenceTest, ::testing::ValuesIn(kCaseNames),
                         CaseTestName);
INSTANTIATE_TEST_SUITE_P(GatedFamilies, GateOrderTest,
                         ::testing::Values("gru-a", "gru-l", "lstm-a", "lstm-l", "gru-l.2layers",
                                           "lstm-a.2layers"),
                         CaseTestName);

}  // namespace
}  // namespace srn
