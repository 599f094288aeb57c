#include "model/nn/network.h"

#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "model/nn/pair_loss.h"
#include "model/nn/parameters.h"

namespace srn {
namespace {

std::vector<Series> RandomSeries(const std::vector<int>& lengths, int dims, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<Series> out;
  for (int len : lengths) {
    Series s(len, dims);
    for (int i = 0; i < s.mutable_frames().size(); ++i) s.mutable_frames().data()[i] = normal(rng);
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<const Series*> Pointers(const std::vector<Series>& v) {
  std::vector<const Series*> p;
  for (const Series& s : v) p.push_back(&s);
  return p;
}

Architecture Make(const std::string& family, int in, int hidden, int layers) {
  Architecture arch = *ParseFamily(family);
  arch.input_dims = in;
  if (!arch.is_logistic()) {
    arch.hidden = hidden;
    arch.layers = layers;
  }
  return arch;
}

// A naive per-series, per-frame implementation of the cell equations, written
// independently of the packed batch code, to check the forward pass.
VectorT<double> NaiveEmbed(const Architecture& arch, const VectorT<double>& p, const Series& s) {
  ParameterLayout layout(arch);
  const int h = arch.hidden;
  const int g = arch.gates();
  std::vector<VectorT<double>> frames;
  for (int t = 0; t < s.length(); ++t)
    frames.push_back(s.frames().row(t).cast<double>().transpose());
  if (arch.is_logistic()) {
    VectorT<double> mean = VectorT<double>::Zero(arch.input_dims);
    for (const auto& f : frames) mean += f;
    return mean / frames.size();
  }
  auto sig = [](double x) { return 1.0 / (1.0 + std::exp(-x)); };
  for (int l = 0; l < arch.layers; ++l) {
    const auto& off = layout.layer(l);
    Eigen::Map<const RowMatrixT<double>> w(p.data() + off.w, g * h, off.in);
    Eigen::Map<const VectorT<double>> b(p.data() + off.b, g * h);
    VectorT<double> z = VectorT<double>::Zero(h), c = VectorT<double>::Zero(h);
    std::vector<VectorT<double>> outs;
    for (const auto& x : frames) {
      VectorT<double> pre = w * x + b;
      if (arch.cell == CellType::kRelu) {
        if (arch.recurrent) pre += Eigen::Map<const RowMatrixT<double>>(p.data() + off.a, h, h) * z;
        z = pre.cwiseMax(0.0);
      } else if (arch.cell == CellType::kGru) {
        VectorT<double> rec = Eigen::Map<const RowMatrixT<double>>(p.data() + off.a, 3 * h, h) * z +
                              Eigen::Map<const VectorT<double>>(p.data() + off.b_hh, 3 * h);
        VectorT<double> znew(h);
        for (int i = 0; i < h; ++i) {
          const double r = sig(pre[i] + rec[i]);
          const double u = sig(pre[h + i] + rec[h + i]);
          const double n = std::tanh(pre[2 * h + i] + r * rec[2 * h + i]);
          znew[i] = (1 - u) * n + u * z[i];
        }
        z = znew;
      } else {
        pre += Eigen::Map<const RowMatrixT<double>>(p.data() + off.a, 4 * h, h) * z;
        for (int i = 0; i < h; ++i) {
          const double ig = sig(pre[i]), fg = sig(pre[h + i]), gg = std::tanh(pre[2 * h + i]),
                       og = sig(pre[3 * h + i]);
          c[i] = fg * c[i] + ig * gg;
          z[i] = og * std::tanh(c[i]);
        }
      }
      outs.push_back(z);
    }
    frames = outs;
  }
  if (arch.pooling == Pooling::kLast) return frames.back();
  VectorT<double> mean = VectorT<double>::Zero(h);
  for (const auto& f : frames) mean += f;
  mean /= static_cast<double>(frames.size());
  if (arch.pooling == Pooling::kMean) return mean;
  // Statistics pooling: the mean, then the standard deviation around it (two passes here).
  VectorT<double> var = VectorT<double>::Zero(h);
  for (const auto& f : frames) var += (f - mean).cwiseAbs2();
  var /= static_cast<double>(frames.size());
  VectorT<double> out(2 * h);
  out << mean, (var.array() + kStatsPoolingEpsilon).sqrt().matrix();
  return out;
}

const std::vector<std::string> kFamilies = {"srn-a",  "srn-l",  "srn-s",   "sn-a",  "sn-l",
                                            "sn-s",   "gru-a",  "gru-l",   "gru-s", "lstm-a",
                                            "lstm-l", "lstm-s", "logistic"};

class NetworkFamilyTest : public ::testing::TestWithParam<std::tuple<std::string, int>> {};

TEST_P(NetworkFamilyTest, PackedForwardMatchesNaiveCellEquations) {
  const auto& [family, layers] = GetParam();
  const Architecture arch = Make(family, 3, 5, layers);
  ParameterLayout layout(arch);
  const VectorT<double> params = InitParameters(arch, 0.6f, 11).cast<double>();
  const std::vector<Series> series = RandomSeries({4, 7, 1, 7, 2}, 3, 5);
  Network<double> net(arch, layout);
  Network<double>::Workspace ws;
  RowMatrixT<double> emb;
  net.Embed(params.data(), Pointers(series), &ws, &emb);
  ASSERT_EQ(emb.rows(), 5);
  ASSERT_EQ(emb.cols(), arch.embedding_dims());
  for (int i = 0; i < 5; ++i) {
    const VectorT<double> expected = NaiveEmbed(arch, params, series[i]);
    EXPECT_LT((emb.row(i).transpose() - expected).norm(), 1e-12 * (1 + expected.norm()))
        << family << " series " << i;
  }
  // Embedding in blocks of a few time steps (each carrying its state into the
  // next) gives the same result as in one block.
  for (int64_t block_rows : {1, 3, 7}) {
    ws.block_rows = block_rows;
    RowMatrixT<double> blocked;
    net.Embed(params.data(), Pointers(series), &ws, &blocked);
    EXPECT_LT((blocked - emb).cwiseAbs().maxCoeff(), 1e-12)
        << family << " block_rows " << block_rows;
  }
  // The inference network (recurrent weights rearranged, single-series steps
  // skipping zero states) embeds the same, one series at a time and all
  // together.
  Network<double> inference(arch, layout, /*inference_weights=*/true);
  const VectorT<double> inference_params = inference.InferenceWeights(params);
  Network<double>::Workspace iws;
  RowMatrixT<double> together;
  inference.Embed(inference_params.data(), Pointers(series), &iws, &together);
  EXPECT_LT((together - emb).cwiseAbs().maxCoeff(), 1e-12) << family;
  for (int i = 0; i < 5; ++i) {
    RowMatrixT<double> one;
    inference.Embed(inference_params.data(), {&series[i]}, &iws, &one);
    EXPECT_LT((one - emb.row(i)).cwiseAbs().maxCoeff(), 1e-12) << family << " series " << i;
  }
  // The float network agrees with the double one to float precision.
  Network<float> fnet(arch, layout);
  Network<float>::Workspace fws;
  RowMatrix femb;
  const Vector fparams = params.cast<float>();
  fnet.Embed(fparams.data(), Pointers(series), &fws, &femb);
  EXPECT_LT((femb.cast<double>() - emb).cwiseAbs().maxCoeff(), 1e-5);
}

TEST_P(NetworkFamilyTest, AnalyticGradientsMatchFiniteDifferences) {
  const auto& [family, layers] = GetParam();
  const Architecture arch = Make(family, 3, 4, layers);
  ParameterLayout layout(arch);
  VectorT<double> params = InitParameters(arch, 0.6f, 3).cast<double>();
  // Non-zero biases and head so every path carries gradient.
  std::mt19937_64 rng(9);
  std::uniform_real_distribution<double> u(-0.3, 0.3);
  for (Eigen::Index i = 0; i < params.size(); ++i) params[i] += u(rng);
  const std::vector<Series> series = RandomSeries({5, 3, 6, 1}, 3, 17);
  const std::vector<Pair> pairs = {{0, 1, 1}, {2, 3, 0}, {0, 2, 0}, {1, 3, 1}, {2, 2, 1}};
  Network<double> net(arch, layout);

  auto loss_at = [&](const VectorT<double>& p, VectorT<double>* grad) {
    Network<double>::Workspace ws;
    RowMatrixT<double> emb, d_emb;
    net.Forward(p.data(), Pointers(series), 0.0, nullptr, &ws, &emb);
    VectorT<double> g = VectorT<double>::Zero(p.size());
    const double loss = PairLoss<double>(p.data(), layout, emb, pairs, 0.2, &d_emb, g.data());
    net.Backward(p.data(), d_emb, &ws, g.data());
    if (grad) *grad = g;
    return loss;
  };
  VectorT<double> analytic;
  loss_at(params, &analytic);
  VectorT<double> numeric(params.size());
  const double eps = 1e-6;
  for (Eigen::Index i = 0; i < params.size(); ++i) {
    VectorT<double> plus = params, minus = params;
    plus[i] += eps;
    minus[i] -= eps;
    numeric[i] = (loss_at(plus, nullptr) - loss_at(minus, nullptr)) / (2 * eps);
  }
  ASSERT_GT(analytic.norm(), 1e-3) << "the check needs a non-trivial gradient";
  const double rel = (analytic - numeric).norm() / (analytic.norm() + numeric.norm());
  EXPECT_LT(rel, 1e-4) << family << " layers=" << layers;
  for (Eigen::Index i = 0; i < params.size(); ++i) {
    const double scale = std::max({std::abs(analytic[i]), std::abs(numeric[i]), 1e-3});
    EXPECT_LT(std::abs(analytic[i] - numeric[i]) / scale, 1e-4)
        << family << " layers=" << layers << " parameter " << i;
  }
}

// BackwardFrames against finite differences of a loss on the top layer's per-frame states
// (what a frame-level objective such as soft-DTW sees): L = sum c * z + 0.5 sum z^2 over every
// frame, with fixed random c, so d(L)/d(z) = c + z. With two layers, dropout between them (the
// same mask at every evaluation: the generator restarts from one seed) is part of the check.
TEST_P(NetworkFamilyTest, FrameGradientsMatchFiniteDifferences) {
  const auto& [family, layers] = GetParam();
  const Architecture arch = Make(family, 3, 4, layers);
  ParameterLayout layout(arch);
  Network<double> net(arch, layout);
  const std::vector<Series> series = RandomSeries({5, 3, 6, 1}, 3, 19);
  if (arch.is_logistic()) {
    const VectorT<double> params = InitParameters(arch, 0.6f, 3).cast<double>();
    Network<double>::Workspace ws;
    RowMatrixT<double> emb;
    net.Forward(params.data(), Pointers(series), 0.0, nullptr, &ws, &emb);
    VectorT<double> grad = VectorT<double>::Zero(params.size());
    const absl::Status status =
        net.BackwardFrames(params.data(), RowMatrixT<double>::Zero(14, 3), &ws, grad.data());
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
    return;
  }
  VectorT<double> params = InitParameters(arch, 0.6f, 3).cast<double>();
  std::mt19937_64 noise(10);
  std::uniform_real_distribution<double> u(-0.3, 0.3);
  for (Eigen::Index i = 0; i < params.size(); ++i) params[i] += u(noise);
  const double dropout = layers > 1 ? 0.3 : 0.0;
  RowMatrixT<double> c;  // filled at the first evaluation, in packed row order

  auto loss_at = [&](const VectorT<double>& p, VectorT<double>* grad) {
    Network<double>::Workspace ws;
    RowMatrixT<double> emb;
    std::mt19937_64 rng(77);
    net.Forward(p.data(), Pointers(series), dropout, &rng, &ws, &emb);
    const RowMatrixT<double>& z = ws.layers.back().out;
    if (c.size() == 0) {
      c.resize(z.rows(), z.cols());
      for (Eigen::Index k = 0; k < c.size(); ++k) c.data()[k] = u(noise);
    }
    const double loss = (c.array() * z.array()).sum() + 0.5 * z.squaredNorm();
    if (grad != nullptr) {
      *grad = VectorT<double>::Zero(p.size());
      const RowMatrixT<double> d_states = c + z;
      const absl::Status status = net.BackwardFrames(p.data(), d_states, &ws, grad->data());
      EXPECT_TRUE(status.ok()) << status;
    }
    return loss;
  };
  VectorT<double> analytic;
  loss_at(params, &analytic);
  const double eps = 1e-6;
  VectorT<double> numeric(params.size());
  for (Eigen::Index i = 0; i < params.size(); ++i) {
    VectorT<double> plus = params, minus = params;
    plus[i] += eps;
    minus[i] -= eps;
    numeric[i] = (loss_at(plus, nullptr) - loss_at(minus, nullptr)) / (2 * eps);
  }
  ASSERT_GT(analytic.norm(), 1e-3) << "the check needs a non-trivial gradient";
  // The head (v, c) never sees the states: its gradient is exactly zero, as is the numeric one.
  EXPECT_EQ(analytic.segment(layout.v_offset(), arch.embedding_dims()).norm(), 0.0);
  EXPECT_EQ(analytic[layout.c_offset()], 0.0);
  for (Eigen::Index i = 0; i < params.size(); ++i) {
    const double scale = std::max({std::abs(analytic[i]), std::abs(numeric[i]), 1e-3});
    EXPECT_LT(std::abs(analytic[i] - numeric[i]) / scale, 1e-4)
        << family << " layers=" << layers << " parameter " << i;
  }
}

TEST(NetworkTest, BackwardFramesRejectsWhatItCannotDo) {
  const std::vector<Series> series = RandomSeries({4, 2}, 3, 1);
  // A wrong shape of d_states, and no Forward at all.
  {
    const Architecture arch = Make("gru-a", 3, 4, 1);
    ParameterLayout layout(arch);
    const Vector params = InitParameters(arch, 0.3f, 1);
    Network<float> net(arch, layout);
    Network<float>::Workspace ws;
    Vector grad = Vector::Zero(params.size());
    absl::Status status = net.BackwardFrames(params.data(), RowMatrix::Zero(6, 4), &ws,
                                             grad.data());
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
    RowMatrix emb;
    net.Forward(params.data(), Pointers(series), 0.0f, nullptr, &ws, &emb);
    status = net.BackwardFrames(params.data(), RowMatrix::Zero(6, 5), &ws, grad.data());
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_NE(status.message().find("6 x 5"), absl::string_view::npos) << status;
    status = net.BackwardFrames(params.data(), RowMatrix::Zero(5, 4), &ws, grad.data());
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_EQ(grad.norm(), 0.0f) << "nothing is added on error";
    status = net.BackwardFrames(params.data(), RowMatrix::Ones(6, 4), &ws, grad.data());
    EXPECT_TRUE(status.ok()) << status;
    EXPECT_GT(grad.norm(), 0.0f);
  }
  // One float ReLU layer trains series by series, which keeps no batched states.
  {
    const Architecture arch = Make("srn-a", 3, 64, 1);
    ParameterLayout layout(arch);
    Network<float> net(arch, layout);
    if (!net.TrainsSeriesAlone()) GTEST_SKIP() << "this CPU has no AVX2 kernel";
    const Vector params = InitParameters(arch, 0.3f, 1);
    Network<float>::Workspace ws;
    RowMatrix emb;
    std::mt19937_64 rng(1);
    net.Forward(params.data(), Pointers(series), 0.0f, &rng, &ws, &emb);
    Vector grad = Vector::Zero(params.size());
    const absl::Status status =
        net.BackwardFrames(params.data(), RowMatrix::Zero(6, 64), &ws, grad.data());
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
    EXPECT_NE(status.message().find("series by series"), absl::string_view::npos) << status;
  }
}

// Widths that exercise the single-series relu step's 32-output blocks and its
// remainder.
TEST(NetworkTest, InferenceWeightsEmbedLikeTheCellEquationsAtServingWidths) {
  for (int hidden : {32, 40, 64, 97}) {
    for (const std::string family : {"srn-a", "srn-l"}) {
      for (int layers : {1, 2}) {
        const Architecture arch = Make(family, 6, hidden, layers);
        ParameterLayout layout(arch);
        const VectorT<double> params = InitParameters(arch, 0.3f, 5).cast<double>();
        Network<double> net(arch, layout, /*inference_weights=*/true);
        const VectorT<double> inference_params = net.InferenceWeights(params);
        ASSERT_EQ(inference_params.size(), params.size());
        const std::vector<Series> series = RandomSeries({30}, 6, 8);
        Network<double>::Workspace ws;
        RowMatrixT<double> emb;
        net.Embed(inference_params.data(), Pointers(series), &ws, &emb);
        const VectorT<double> expected = NaiveEmbed(arch, params, series[0]);
        EXPECT_LT((emb.row(0).transpose() - expected).norm(), 1e-12 * (1 + expected.norm()))
            << family << " hidden " << hidden << " layers " << layers;
        EXPECT_GT(expected.norm(), 0) << "a dead network would not test anything";
        // The float network is the one that serves (with the vectorised step, when built for
        // AVX2); it agrees to float precision.
        Network<float> fnet(arch, layout, /*inference_weights=*/true);
        const Vector finference = fnet.InferenceWeights(params.cast<float>());
        Network<float>::Workspace fws;
        RowMatrix femb;
        fnet.Embed(finference.data(), Pointers(series), &fws, &femb);
        EXPECT_LT((femb.row(0).transpose().cast<double>() - expected).norm(),
                  1e-5 * (1 + expected.norm()))
            << family << " hidden " << hidden << " layers " << layers << " (float)";
      }
    }
  }
}

// A network whose batch of one takes the register kernel embeds every batch one series at a
// time, on both threads: each row is exactly that series' own embedding, whatever the batch,
// and agrees with the batched layers of the training-order network.
TEST(NetworkTest, SeriesAloneNetworksEmbedBatchesSeriesBySeries) {
  for (const std::string family : {"srn-a", "srn-l"}) {
    for (int layers : {1, 2}) {
      const Architecture arch = Make(family, 5, 64, layers);
      ParameterLayout layout(arch);
      const Vector params = InitParameters(arch, 0.3f, 3);
      Network<float> inference(arch, layout, /*inference_weights=*/true);
      if (!inference.EmbedsSeriesAlone()) GTEST_SKIP() << "this CPU has no AVX2 kernel";
      Network<float> batched(arch, layout);
      EXPECT_FALSE(batched.EmbedsSeriesAlone()) << "training-order weights never take the kernel";
      const Vector iparams = inference.InferenceWeights(params);
      std::vector<int> lengths;
      for (int i = 0; i < 150; ++i)
        lengths.push_back(20 + (i * 7) % 41);  // 6000+ frames: 2 threads
      const std::vector<Series> series = RandomSeries(lengths, 5, 12);

      RowMatrix together;
      EmbedParallel(inference, iparams.data(), Pointers(series), 2, &together);
      ASSERT_EQ(together.rows(), 150);
      Network<float>::Workspace ws;
      RowMatrix expected;
      batched.Embed(params.data(), Pointers(series), &ws, &expected);
      EXPECT_LT((together - expected).cwiseAbs().maxCoeff(), 1e-5)
          << family << " layers " << layers;
      for (int i : {0, 1, 77, 149}) {
        RowMatrix one;
        inference.Embed(iparams.data(), {&series[i]}, &ws, &one);
        EXPECT_EQ(one.row(0), together.row(i)) << family << " layers " << layers << " series " << i;
      }
    }
  }
}

// One ReLU layer in float trains series by series through the register kernels; its
// embeddings, loss gradients and dropout must be those of the batched path, here run in double
// (whose gradients the finite-difference test above checks), at widths taking every block size
// of both instruction sets.
TEST(NetworkTest, SeriesTrainingMatchesTheBatchedPath) {
  for (const std::string family : {"srn-a", "srn-l"}) {
    for (int hidden : {8, 24, 64, 128}) {
      for (float dropout : {0.0f, 0.3f}) {
        const Architecture arch = Make(family, 7, hidden, 1);
        ParameterLayout layout(arch);
        Vector params = InitParameters(arch, 0.3f, 21);
        // A non-zero bias and head, so that every parameter gets gradient.
        std::mt19937_64 noise(22);
        std::uniform_real_distribution<float> u(-0.1f, 0.1f);
        for (Eigen::Index i = 0; i < params.size(); ++i) params[i] += u(noise);
        Network<float> net(arch, layout);
        if (!net.TrainsSeriesAlone()) GTEST_SKIP() << "this CPU has no AVX2 kernel";
        Network<double> reference(arch, layout);
        const std::vector<Series> series = RandomSeries({40, 1, 17, 40, 3, 26}, 7, 23);
        const std::vector<Pair> pairs = {{0, 1, 1}, {2, 3, 0}, {4, 5, 0}, {0, 3, 1}, {5, 2, 1}};
        const std::string where =
            family + " hidden " + std::to_string(hidden) + " dropout " + std::to_string(dropout);

        std::mt19937_64 rng(5);
        Network<float>::Workspace ws;
        RowMatrix emb, d_emb;
        net.Forward(params.data(), Pointers(series), dropout, &rng, &ws, &emb);
        Vector grad = Vector::Zero(params.size());
        PairLoss<float>(params.data(), layout, emb, pairs, 0.2f, &d_emb, grad.data());
        net.Backward(params.data(), d_emb, &ws, grad.data());

        // The same dropout draws: the reference consumes the generator in the same order.
        std::mt19937_64 reference_rng(5);
        const VectorT<double> dparams = params.cast<double>();
        Network<double>::Workspace dws;
        RowMatrixT<double> demb, dd_emb;
        reference.Forward(dparams.data(), Pointers(series), dropout, &reference_rng, &dws, &demb);
        VectorT<double> dgrad = VectorT<double>::Zero(params.size());
        PairLoss<double>(dparams.data(), layout, demb, pairs, 0.2, &dd_emb, dgrad.data());
        reference.Backward(dparams.data(), dd_emb, &dws, dgrad.data());

        EXPECT_LT((emb.cast<double>() - demb).cwiseAbs().maxCoeff(),
                  1e-5 * (1 + demb.cwiseAbs().maxCoeff()))
            << where;
        ASSERT_GT(dgrad.norm(), 1e-3) << "the check needs a non-trivial gradient";
        EXPECT_LT((grad.cast<double>() - dgrad).norm() / dgrad.norm(), 1e-4) << where;
        // Every tensor of the encoder gets its own gradient right, not just the total.
        const ParameterLayout::LayerOffsets& off = layout.layer(0);
        for (const auto& [name, begin, size] :
             {std::tuple<const char*, int64_t, int64_t>{"W", off.w, int64_t{hidden} * 7},
              {"A", off.a, int64_t{hidden} * hidden},
              {"b", off.b, hidden}}) {
          const VectorT<double> expected = dgrad.segment(begin, size);
          const VectorT<double> got = grad.segment(begin, size).cast<double>();
          EXPECT_LT((got - expected).norm(), 1e-4 * (expected.norm() + 1e-6))
              << where << " " << name;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllFamilies, NetworkFamilyTest,
                         ::testing::Combine(::testing::ValuesIn(kFamilies),
                                            ::testing::Values(1, 2)),
                         [](const auto& info) {
                           std::string name = std::get<0>(info.param) + "_" +
                                              std::to_string(std::get<1>(info.param));
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

TEST(NetworkTest, DropoutIsInvertedAndTrainingOnly) {
  const Architecture arch = Make("srn-a", 3, 64, 2);
  ParameterLayout layout(arch);
  const Vector params = InitParameters(arch, 0.3f, 1);
  const std::vector<Series> series = RandomSeries({20, 20, 20, 20}, 3, 2);
  Network<float> net(arch, layout);
  Network<float>::Workspace ws;
  RowMatrix a, b, c;
  net.Embed(params.data(), Pointers(series), &ws, &a);
  net.Embed(params.data(), Pointers(series), &ws, &b);
  EXPECT_EQ(a, b);
  std::mt19937_64 rng(4);
  net.Forward(params.data(), Pointers(series), 0.5f, &rng, &ws, &c);
  EXPECT_NE(a, c);
  // Entries are either dropped (0) or scaled up; about half are dropped.
  const double zero_fraction = (c.array() == 0.0f).cast<double>().mean();
  EXPECT_GT(zero_fraction, 0.3);
  EXPECT_LT(zero_fraction, 0.8);
}

TEST(PackBatchTest, SortsByLengthAndGroupsFramesByStep) {
  const std::vector<Series> series = RandomSeries({2, 4, 1}, 2, 3);
  PackedBatch<float> packed;
  PackBatch(Pointers(series), &packed);
  EXPECT_EQ(packed.order, (std::vector<int>{1, 0, 2}));
  EXPECT_EQ(packed.step_rows, (std::vector<int>{3, 2, 1, 1}));
  EXPECT_EQ(packed.step_offset, (std::vector<int64_t>{0, 3, 5, 6}));
  EXPECT_EQ(packed.rows(), 7);
  EXPECT_EQ(packed.frames.row(4),
            series[0].frames().row(1));  // step 1, second longest
  EXPECT_EQ(packed.frames.row(6), series[1].frames().row(3));
}

}  // namespace
}  // namespace srn
