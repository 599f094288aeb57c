#include "model/nn/network.h"

#include <algorithm>
#include <memory>
#include <numeric>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "model/nn/parallel.h"
#include "model/nn/relu_kernels.h"

namespace srn {
namespace {

template <typename T>
using Mat = RowMatrixT<T>;
template <typename T>
using ConstMap = Eigen::Map<const Mat<T>>;
template <typename T>
using MutMap = Eigen::Map<Mat<T>>;
template <typename T>
using ConstVecMap = Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>>;
template <typename T>
using MutVecMap = Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic>>;

template <typename Derived>
auto Sigmoid(const Eigen::ArrayBase<Derived>& x) {
  using T = typename Derived::Scalar;
  return (T(1) + (-x).exp()).inverse();
}

// Inverted-dropout mask: each entry is 1/(1-rate) with probability 1-rate, else
// 0.
template <typename T>
void DropoutMask(Eigen::Index rows, Eigen::Index cols, T rate, std::mt19937_64* rng, Mat<T>* mask) {
  mask->resize(rows, cols);
  const T keep = T(1) - rate;
  const T scale = T(1) / keep;
  // 24 random bits per entry, from one 64-bit draw per two entries.
  const uint64_t threshold = static_cast<uint64_t>(static_cast<double>(keep) * (1 << 24));
  T* p = mask->data();
  const Eigen::Index n = mask->size();
  for (Eigen::Index i = 0; i < n; i += 2) {
    const uint64_t bits = (*rng)();
    p[i] = (bits & 0xffffff) < threshold ? scale : T(0);
    if (i + 1 < n) p[i + 1] = ((bits >> 32) & 0xffffff) < threshold ? scale : T(0);
  }
}

// Everything PackBatch fills but the frames.
template <typename T>
void SortByLength(const std::vector<const Series*>& batch, PackedBatch<T>* out) {
  const int n = static_cast<int>(batch.size());
  out->order.resize(n);
  std::iota(out->order.begin(), out->order.end(), 0);
  std::stable_sort(out->order.begin(), out->order.end(),
                   [&](int a, int b) { return batch[a]->length() > batch[b]->length(); });
  out->lengths.resize(n);
  for (int j = 0; j < n; ++j) out->lengths[j] = batch[out->order[j]]->length();
  const int steps = n == 0 ? 0 : out->lengths[0];
  out->step_rows.resize(steps);
  out->step_offset.resize(steps);
  int running = n;
  int64_t offset = 0;
  for (int t = 0; t < steps; ++t) {
    while (running > 0 && out->lengths[running - 1] <= t) --running;
    out->step_rows[t] = running;
    out->step_offset[t] = offset;
    offset += running;
  }
}

// A pointer to `size` values in `buffer` that starts on a cache line; the same pointer for the
// same buffer until it must grow. It only grows, by a quarter more than asked: a mini-batch's
// frame count changes on every training step, and a fresh allocation of this size comes
// straight from mmap, page faults and all.
template <typename T>
T* CacheLineAligned(VectorT<T>* buffer, Eigen::Index size) {
  constexpr Eigen::Index kSlack = 64 / sizeof(T);
  if (buffer->size() < size + kSlack) buffer->resize(size + size / 4 + kSlack);
  void* p = buffer->data();
  size_t space = static_cast<size_t>(buffer->size()) * sizeof(T);
  return static_cast<T*>(std::align(64, static_cast<size_t>(size) * sizeof(T), p, space));
}

// Adds one step's states (the first rows of the batch, one per series still running) to the
// pooling sums: sum z_t in the first `hidden` columns of `pooled`, and with `stats` (statistics
// pooling, 2 x hidden columns) sum z_t^2 in the others.
template <typename T, typename Rows>
void AccumulatePooled(const Rows& states, bool stats, Mat<T>* pooled) {
  const Eigen::Index bt = states.rows();
  const Eigen::Index h = states.cols();
  pooled->topLeftCorner(bt, h) += states;
  if (stats) pooled->topRightCorner(bt, h) += states.array().square().matrix();
}

// Turns the sums into the embedding: the mean, and for statistics pooling the standard deviation
// sqrt(mean z^2 - mean^2 + eps) (a difference that rounding may push below zero: clamped).
template <typename T>
void FinishPooled(const std::vector<int>& lengths, bool stats, Mat<T>* pooled) {
  for (size_t j = 0; j < lengths.size(); ++j) {
    const T inv = T(1) / static_cast<T>(lengths[j]);
    if (!stats) {
      pooled->row(j) *= inv;
      continue;
    }
    const Eigen::Index h = pooled->cols() / 2;
    pooled->row(j).head(h) *= inv;
    pooled->row(j).tail(h) =
        ((pooled->row(j).tail(h).array() * inv - pooled->row(j).head(h).array().square())
             .cwiseMax(T(0)) +
         T(kStatsPoolingEpsilon))
            .sqrt()
            .matrix();
  }
}

}  // namespace

template <typename T>
void PackBatch(const std::vector<const Series*>& batch, PackedBatch<T>* out) {
  SortByLength(batch, out);
  const int n = out->batch();
  const int steps = out->steps();
  const int64_t total = steps == 0 ? 0 : out->step_offset.back() + out->step_rows.back();
  const int dims = n == 0 ? 0 : batch[0]->dims();
  out->frames.resize(total, dims);
  for (int t = 0; t < steps; ++t) {
    const int64_t base = out->step_offset[t];
    for (int j = 0; j < out->step_rows[t]; ++j) {
      out->frames.row(base + j) = batch[out->order[j]]->frames().row(t).template cast<T>();
    }
  }
}

template <typename T>
Network<T>::Network(const Architecture& arch, const ParameterLayout& layout, bool inference_weights)
    : arch_(arch), layout_(layout), inference_weights_(inference_weights) {}

template <typename T>
VectorT<T> Network<T>::InferenceWeights(const VectorT<T>& params) const {
  VectorT<T> out = params;
  if (arch_.cell != CellType::kRelu || !arch_.recurrent || arch_.is_logistic()) return out;
  const int h = arch_.hidden;
  for (int l = 0; l < arch_.layers; ++l) {
    const ParameterLayout::LayerOffsets& off = layout_.layer(l);
    MutMap<T>(out.data() + off.a, h, h) = ConstMap<T>(params.data() + off.a, h, h).transpose();
    MutMap<T>(out.data() + off.w, off.in, h) =
        ConstMap<T>(params.data() + off.w, h, off.in).transpose();
  }
  return out;
}

template <typename T>
bool Network<T>::EmbedsSeriesAlone() const {
  return std::is_same_v<T, float> && inference_weights_ && arch_.cell == CellType::kRelu &&
         arch_.recurrent && relu_kernels::BestIsaFor(arch_.hidden) != relu_kernels::Isa::kNone;
}

template <typename T>
bool Network<T>::TrainsSeriesAlone() const {
  return std::is_same_v<T, float> && !inference_weights_ && arch_.cell == CellType::kRelu &&
         arch_.recurrent && arch_.layers == 1 && arch_.pooling != Pooling::kStats &&
         relu_kernels::BestIsaFor(arch_.hidden) != relu_kernels::Isa::kNone;
}

template <typename T>
void Network<T>::Embed(const T* params, const std::vector<const Series*>& batch, Workspace* ws,
                       RowMatrixT<T>* out) const {
  if constexpr (std::is_same_v<T, float>) {
    // One series through one ReLU layer (a server's Embed): read in place, pooled on the fly,
    // no packed copy and no stored states.
    if (batch.size() == 1 && arch_.layers == 1 && arch_.pooling != Pooling::kStats &&
        EmbedsSeriesAlone()) {
      const relu_kernels::Isa isa = relu_kernels::BestIsaFor(arch_.hidden);
      const Series& series = *batch[0];
      const ParameterLayout::LayerOffsets& off = layout_.layer(0);
      out->resize(1, arch_.hidden);
      relu_kernels::ReluRecurrencePooled(
          isa, series.data(), series.length(), off.in, params + off.w, params + off.b,
          params + off.a, arch_.hidden, arch_.pooling == Pooling::kMean, out->data());
      return;
    }
  }
  PackBatch(batch, &ws->packed);
  if (arch_.is_logistic()) {
    Run(params, T(0), nullptr, /*training=*/false, ws, out);
  } else {
    RunBlocked(params, ws, out);
  }
}

template <typename T>
void Network<T>::RunBlocked(const T* params, Workspace* ws, RowMatrixT<T>* out) const {
  const PackedBatch<T>& packed = ws->packed;
  const int n = packed.batch();
  const int steps = packed.steps();
  const int e = arch_.embedding_dims();
  ws->layers.resize(arch_.layers);
  Mat<T>& pooled = ws->pooled;
  if (arch_.pooling == Pooling::kLast) {
    pooled.resize(n, e);
  } else {
    pooled.setZero(n, e);
  }
  PackedBatch<T>& block = ws->block;
  for (int t0 = 0; t0 < steps;) {
    // The block: steps [t0, t1), at least one, at most block_rows rows when
    // there is a choice.
    int t1 = t0 + 1;
    int64_t rows = packed.step_rows[t0];
    while (t1 < steps && rows + packed.step_rows[t1] <= ws->block_rows)
      rows += packed.step_rows[t1++];
    // A batch that fits one block (every single series of a server's requests) is used as it
    // is; otherwise the block's steps are copied out, offsets relative to its first row.
    const bool whole = t0 == 0 && t1 == steps;
    if (!whole) {
      const int64_t base = packed.step_offset[t0];
      block.order.resize(packed.step_rows[t0]);  // sizes LayerForward's per-step scratch
      block.step_rows.assign(packed.step_rows.begin() + t0, packed.step_rows.begin() + t1);
      block.step_offset.resize(t1 - t0);
      for (int t = t0; t < t1; ++t) block.step_offset[t - t0] = packed.step_offset[t] - base;
      block.frames = packed.frames.middleRows(base, rows);
    }
    const PackedBatch<T>& view = whole ? packed : block;

    for (int l = 0; l < arch_.layers; ++l) {
      typename Workspace::Layer& layer = ws->layers[l];
      if (l > 0) std::swap(layer.input,
                           ws->layers[l - 1].out);  // the layer below is done with it
      LayerForward(params, l, /*training=*/false, &layer, view, t0 > 0 ? &layer.carry_z : nullptr,
                   t0 > 0 ? &layer.carry_c : nullptr);
      // Carry the block's last step into the next block.
      if (t1 < steps) {
        const int64_t last = view.step_offset.back();
        const int last_rows = view.step_rows.back();
        layer.carry_z = layer.out.middleRows(last, last_rows);
        if (arch_.cell == CellType::kLstm) layer.carry_c = layer.cell.middleRows(last, last_rows);
      }
    }

    const Mat<T>& top = ws->layers.back().out;
    for (int t = t0; t < t1; ++t) {
      const int64_t o = view.step_offset[t - t0];
      const int bt = packed.step_rows[t];
      if (arch_.pooling != Pooling::kLast) {
        AccumulatePooled(top.middleRows(o, bt), arch_.pooling == Pooling::kStats, &pooled);
      } else {
        // Series j ends at step t when it is among this step's rows but not the
        // next one's.
        const int next = t + 1 < steps ? packed.step_rows[t + 1] : 0;
        for (int j = next; j < bt; ++j) pooled.row(j) = top.row(o + j);
      }
    }
    t0 = t1;
  }
  if (arch_.pooling != Pooling::kLast) {
    FinishPooled(packed.lengths, arch_.pooling == Pooling::kStats, &pooled);
  }
  out->resize(n, e);
  for (int j = 0; j < n; ++j) out->row(packed.order[j]) = pooled.row(j);
}

template <typename T>
void Network<T>::Forward(const T* params, const std::vector<const Series*>& batch, T dropout,
                         std::mt19937_64* rng, Workspace* ws, RowMatrixT<T>* out) const {
  if (TrainsSeriesAlone()) {
    SeriesForward(params, batch, dropout, rng, ws, out);
    return;
  }
  PackBatch(batch, &ws->packed);
  Run(params, dropout, rng, /*training=*/true, ws, out);
}

template <typename T>
void Network<T>::SeriesForward(const T* params, const std::vector<const Series*>& batch, T dropout,
                               std::mt19937_64* rng, Workspace* ws, RowMatrixT<T>* out) const {
  if constexpr (std::is_same_v<T, float>) {
    PackedBatch<T>& packed = ws->packed;
    SortByLength(batch, &packed);  // the order only: the kernel reads each series in place
    const int n = packed.batch();
    const int h = arch_.hidden;
    const ParameterLayout::LayerOffsets& off = layout_.layer(0);
    // W^T and A^T for the forward kernel, A for the backward one, each on a cache line: the
    // AVX-512 kernels' 64-byte row loads then never straddle two lines.
    const int64_t wt_size = (int64_t{off.in} * h + 15) / 16 * 16;
    const int64_t a_size = int64_t{h} * h;
    T* weights = CacheLineAligned(&ws->kernel_weights, wt_size + 2 * a_size);
    ws->kernel_wt = weights;
    ws->kernel_at = weights + wt_size;
    ws->kernel_a = weights + wt_size + a_size;
    MutMap<T>(ws->kernel_wt, off.in, h) = ConstMap<T>(params + off.w, h, off.in).transpose();
    MutMap<T>(ws->kernel_at, h, h) = ConstMap<T>(params + off.a, h, h).transpose();
    MutMap<T>(ws->kernel_a, h, h) = ConstMap<T>(params + off.a, h, h);
    ws->series_row.resize(n + 1);
    int64_t rows = 0;
    for (int j = 0; j < n; ++j) {
      ws->series_row[j] = rows;
      rows += packed.lengths[j] + 1;
    }
    ws->series_row[n] = rows;
    MutMap<T> states(CacheLineAligned(&ws->series_states, rows * h), rows, h);
    MutMap<T> inputs(CacheLineAligned(&ws->series_inputs, rows * off.in), rows, off.in);
    ws->pooled.resize(n, h);
    const relu_kernels::Isa isa = relu_kernels::BestIsaFor(arch_.hidden);
    for (int j = 0; j < n; ++j) {
      const Series& series = *batch[packed.order[j]];
      const int64_t r = ws->series_row[j];
      const int len = packed.lengths[j];
      states.row(r).setZero();
      // Mean pooling sums the states as the kernel writes them.
      const bool mean = arch_.pooling == Pooling::kMean;
      if (mean) ws->pooled.row(j).setZero();
      relu_kernels::ReluRecurrence(isa, series.data(), len, off.in, ws->kernel_wt, params + off.b,
                                   ws->kernel_at, h, nullptr, states.row(r + 1).data(),
                                   mean ? ws->pooled.row(j).data() : nullptr);
      if (mean) {
        ws->pooled.row(j) /= static_cast<T>(len);
      } else {
        ws->pooled.row(j) = states.row(r + len);
      }
      inputs.middleRows(r, len) = series.frames();
      inputs.row(r + len).setZero();
    }
    EmitPooled(dropout, rng, ws, out);
  } else {
    (void)params, (void)batch, (void)dropout, (void)rng, (void)ws, (void)out;
  }
}

template <typename T>
void Network<T>::Run(const T* params, T dropout, std::mt19937_64* rng, bool training, Workspace* ws,
                     RowMatrixT<T>* out) const {
  const PackedBatch<T>& packed = ws->packed;
  const int n = packed.batch();
  const int steps = packed.steps();
  const bool drop = training && dropout > T(0);

  // The top layer's frames (the input itself for the logistic model).
  const Mat<T>* top = &packed.frames;
  if (!arch_.is_logistic()) {
    ws->layers.resize(arch_.layers);
    for (int l = 0; l < arch_.layers; ++l) {
      typename Workspace::Layer& layer = ws->layers[l];
      if (l > 0) {
        const typename Workspace::Layer& below = ws->layers[l - 1];
        if (drop) {
          DropoutMask<T>(below.out.rows(), below.out.cols(), dropout, rng, &ws->layers[l - 1].keep);
          layer.input.noalias() = (below.out.array() * below.keep.array()).matrix();
        } else {
          ws->layers[l - 1].keep.resize(0, 0);
          layer.input = below.out;
        }
      }
      LayerForward(params, l, training, &layer, packed, nullptr, nullptr);
    }
    top = &ws->layers.back().out;
  }

  const int e = arch_.embedding_dims();
  Mat<T>& pooled = ws->pooled;
  if (arch_.pooling != Pooling::kLast) {
    pooled.setZero(n, e);
    for (int t = 0; t < steps; ++t) {
      AccumulatePooled(top->middleRows(packed.step_offset[t], packed.step_rows[t]),
                       arch_.pooling == Pooling::kStats, &pooled);
    }
    FinishPooled(packed.lengths, arch_.pooling == Pooling::kStats, &pooled);
  } else {
    pooled.resize(n, e);
    for (int j = 0; j < n; ++j)
      pooled.row(j) = top->row(packed.step_offset[packed.lengths[j] - 1] + j);
  }

  EmitPooled(drop ? dropout : T(0), rng, ws, out);
}

template <typename T>
void Network<T>::EmitPooled(T dropout, std::mt19937_64* rng, Workspace* ws,
                            RowMatrixT<T>* out) const {
  const Mat<T>& pooled = ws->pooled;
  const std::vector<int>& order = ws->packed.order;
  const Eigen::Index n = pooled.rows();
  const Eigen::Index e = pooled.cols();
  out->resize(n, e);
  if (dropout > T(0)) {
    DropoutMask<T>(n, e, dropout, rng, &ws->emb_keep);
    for (Eigen::Index j = 0; j < n; ++j) {
      out->row(order[j]) = (pooled.row(j).array() * ws->emb_keep.row(j).array()).matrix();
    }
  } else {
    ws->emb_keep.resize(0, 0);
    for (Eigen::Index j = 0; j < n; ++j) out->row(order[j]) = pooled.row(j);
  }
}

template <typename T>
void Network<T>::LayerForward(const T* params, int l, bool training,
                              typename Workspace::Layer* layer, const PackedBatch<T>& packed,
                              const Mat<T>* init_z, const Mat<T>* init_c) const {
  const ParameterLayout::LayerOffsets& off = layout_.layer(l);
  const int h = arch_.hidden;
  const int g = arch_.gates();
  const Mat<T>& input = l == 0 ? packed.frames : layer->input;
  const Eigen::Index rows = input.rows();
  const int steps = packed.steps();
  ConstMap<T> w(params + off.w, g * h, off.in);
  ConstVecMap<T> b(params + off.b, g * h);

  if (arch_.cell == CellType::kRelu) {
    Mat<T>& z = layer->out;
    // Inference weights of a recurrent layer hold W^T and A^T.
    const bool transposed = inference_weights_ && arch_.recurrent;
    if constexpr (std::is_same_v<T, float>) {
      // One series (a server's request): straight through registers, no GEMM.
      const relu_kernels::Isa isa = relu_kernels::BestIsaFor(h);
      if (transposed && !training && packed.batch() == 1 && isa != relu_kernels::Isa::kNone) {
        z.resize(rows, h);
        relu_kernels::ReluRecurrence(isa, input.data(), rows, off.in, params + off.w,
                                     params + off.b, params + off.a, h,
                                     init_z != nullptr ? init_z->data() : nullptr, z.data());
        return;
      }
    }
    if (transposed) {
      z.noalias() = input * ConstMap<T>(params + off.w, off.in, h);
    } else {
      z.noalias() = input * w.transpose();
    }
    z.rowwise() += b;
    if (!arch_.recurrent) {
      z = z.cwiseMax(T(0));
      return;
    }
    ConstMap<T> a(params + off.a, h, h);  // or A^T, with inference weights
    for (int t = 0; t < steps; ++t) {
      const int64_t o = packed.step_offset[t];
      const int bt = packed.step_rows[t];
      const T* prev = t > 0               ? z.row(packed.step_offset[t - 1]).data()
                      : init_z != nullptr ? init_z->data()
                                          : nullptr;
      if (prev != nullptr) {
        auto prev_rows = ConstMap<T>(prev, bt, h);
        if (inference_weights_) {
          z.middleRows(o, bt).noalias() += prev_rows * a;
        } else {
          z.middleRows(o, bt).noalias() += prev_rows * a.transpose();
        }
      }
      z.middleRows(o, bt) = z.middleRows(o, bt).cwiseMax(T(0));
    }
    if (training) {
      layer->prev.resize(rows, h);
      if (steps > 0) layer->prev.topRows(packed.step_rows[0]).setZero();
      for (int t = 1; t < steps; ++t) {
        layer->prev.middleRows(packed.step_offset[t], packed.step_rows[t]) =
            z.middleRows(packed.step_offset[t - 1], packed.step_rows[t]);
      }
    }
    return;
  }

  ConstMap<T> a(params + off.a, g * h, h);
  Mat<T>& gates = layer->gates;
  gates.noalias() = input * w.transpose();
  gates.rowwise() += b;
  Mat<T>& z = layer->out;
  z.resize(rows, h);
  if (training) {
    layer->prev.resize(rows, h);
    if (steps > 0) layer->prev.topRows(packed.step_rows[0]).setZero();
  }
  Mat<T> rec(packed.batch(), g * h);

  if (arch_.cell == CellType::kGru) {
    ConstVecMap<T> b_hh(params + off.b_hh, g * h);
    if (training) layer->rn.resize(rows, h);
    for (int t = 0; t < steps; ++t) {
      const int64_t o = packed.step_offset[t];
      const int bt = packed.step_rows[t];
      auto r_rec = rec.topRows(bt);
      if (t > 0) {
        r_rec.noalias() = z.middleRows(packed.step_offset[t - 1], bt) * a.transpose();
        r_rec.rowwise() += b_hh;
      } else if (init_z != nullptr) {
        r_rec.noalias() = init_z->topRows(bt) * a.transpose();
        r_rec.rowwise() += b_hh;
      } else {
        r_rec.rowwise() = b_hh;
      }
      auto gt = gates.middleRows(o, bt);
      auto r = gt.leftCols(h).array();
      auto u = gt.middleCols(h, h).array();
      auto nn = gt.rightCols(h).array();
      r = Sigmoid((r + r_rec.leftCols(h).array()).eval());
      u = Sigmoid((u + r_rec.middleCols(h, h).array()).eval());
      nn = (nn + r * r_rec.rightCols(h).array()).tanh();
      if (training) layer->rn.middleRows(o, bt) = r_rec.rightCols(h);
      if (t > 0) {
        auto hp = z.middleRows(packed.step_offset[t - 1], bt).array();
        z.middleRows(o, bt) = ((T(1) - u) * nn + u * hp).matrix();
        if (training) layer->prev.middleRows(o, bt) = hp.matrix();
      } else if (init_z != nullptr) {
        z.middleRows(o, bt) = ((T(1) - u) * nn + u * init_z->topRows(bt).array()).matrix();
      } else {
        z.middleRows(o, bt) = ((T(1) - u) * nn).matrix();
      }
    }
    return;
  }

  // LSTM (gate order i, f, g, o as in PyTorch).
  Mat<T>& c = layer->cell;
  c.resize(rows, h);
  if (training) {
    layer->cell_prev.resize(rows, h);
    if (steps > 0) layer->cell_prev.topRows(packed.step_rows[0]).setZero();
  }
  for (int t = 0; t < steps; ++t) {
    const int64_t o = packed.step_offset[t];
    const int bt = packed.step_rows[t];
    auto gt = gates.middleRows(o, bt);
    if (t > 0) {
      gt.noalias() += z.middleRows(packed.step_offset[t - 1], bt) * a.transpose();
    } else if (init_z != nullptr) {
      gt.noalias() += init_z->topRows(bt) * a.transpose();
    }
    auto i = gt.leftCols(h).array();
    auto f = gt.middleCols(h, h).array();
    auto gg = gt.middleCols(2 * h, h).array();
    auto og = gt.rightCols(h).array();
    i = Sigmoid(i.eval());
    f = Sigmoid(f.eval());
    gg = gg.tanh();
    og = Sigmoid(og.eval());
    if (t > 0) {
      const int64_t op = packed.step_offset[t - 1];
      c.middleRows(o, bt) = (f * c.middleRows(op, bt).array() + i * gg).matrix();
      if (training) {
        layer->prev.middleRows(o, bt) = z.middleRows(op, bt);
        layer->cell_prev.middleRows(o, bt) = c.middleRows(op, bt);
      }
    } else if (init_c != nullptr) {
      c.middleRows(o, bt) = (f * init_c->topRows(bt).array() + i * gg).matrix();
    } else {
      c.middleRows(o, bt) = (i * gg).matrix();
    }
    z.middleRows(o, bt) = (og * c.middleRows(o, bt).array().tanh()).matrix();
  }
}

template <typename T>
void Network<T>::Backward(const T* params, const RowMatrixT<T>& d_emb, Workspace* ws,
                          T* grad) const {
  if (arch_.is_logistic()) return;  // only the head has parameters
  const PackedBatch<T>& packed = ws->packed;
  const int n = packed.batch();
  const int steps = packed.steps();
  const int e = arch_.embedding_dims();
  const int h = arch_.hidden;

  // d(loss)/d(pooled), in packed order.
  Mat<T>& d_pooled = ws->d_prev;
  d_pooled.resize(n, e);
  for (int j = 0; j < n; ++j) d_pooled.row(j) = d_emb.row(packed.order[j]);
  if (ws->emb_keep.size() > 0) d_pooled.array() *= ws->emb_keep.array();
  if (TrainsSeriesAlone()) {
    SeriesBackward(params, d_pooled, ws, grad);
    return;
  }

  Mat<T>& d_out = ws->d_out;
  d_out.setZero(packed.rows(), h);
  if (arch_.pooling == Pooling::kStats) {
    // mean = sum_t z_t / L and sd = sqrt(sum_t z_t^2 / L - mean^2 + eps), so
    // d(loss)/d(z_t) = d_mean / L + d_sd (z_t - mean) / (L sd).
    const Mat<T>& pooled = ws->pooled;
    for (int j = 0; j < n; ++j) {
      const T length = static_cast<T>(packed.lengths[j]);
      d_pooled.row(j).head(h) /= length;
      d_pooled.row(j).tail(h).array() /= length * pooled.row(j).tail(h).array();
    }
    const Mat<T>& top = ws->layers.back().out;
    for (int t = 0; t < steps; ++t) {
      const int64_t o = packed.step_offset[t];
      const int bt = packed.step_rows[t];
      d_out.middleRows(o, bt) = d_pooled.topLeftCorner(bt, h) +
                                ((top.middleRows(o, bt) - pooled.topLeftCorner(bt, h)).array() *
                                 d_pooled.topRightCorner(bt, h).array())
                                    .matrix();
    }
  } else if (arch_.pooling == Pooling::kMean) {
    for (int j = 0; j < n; ++j) d_pooled.row(j) /= static_cast<T>(packed.lengths[j]);
    for (int t = 0; t < steps; ++t) {
      d_out.middleRows(packed.step_offset[t], packed.step_rows[t]) =
          d_pooled.topRows(packed.step_rows[t]);
    }
  } else {
    for (int j = 0; j < n; ++j)
      d_out.row(packed.step_offset[packed.lengths[j] - 1] + j) = d_pooled.row(j);
  }

  BackwardLayers(params, ws, grad);
}

template <typename T>
absl::Status Network<T>::BackwardFrames(const T* params, const RowMatrixT<T>& d_states,
                                        Workspace* ws, T* grad) const {
  if (arch_.is_logistic()) {
    return absl::FailedPreconditionError(
        "BackwardFrames: the logistic model has no per-frame states to backpropagate through");
  }
  if (TrainsSeriesAlone()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "BackwardFrames needs the batched training path, but ", arch_.ToString(),
        " trains series by series in float (use a gru or lstm cell, or more than one layer)"));
  }
  if (ws->layers.size() != static_cast<size_t>(arch_.layers) ||
      ws->layers.back().out.rows() != ws->packed.rows()) {
    return absl::FailedPreconditionError(
        "BackwardFrames: the workspace holds no training Forward of this network");
  }
  if (d_states.rows() != ws->packed.rows() || d_states.cols() != arch_.hidden) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "BackwardFrames: d_states is %d x %d but the last Forward's top layer is %d x %d",
        d_states.rows(), d_states.cols(), ws->packed.rows(), arch_.hidden));
  }
  ws->d_out = d_states;
  BackwardLayers(params, ws, grad);
  return absl::OkStatus();
}

template <typename T>
void Network<T>::BackwardLayers(const T* params, Workspace* ws, T* grad) const {
  Mat<T>& d_out = ws->d_out;
  Mat<T> d_input;
  for (int l = arch_.layers - 1; l >= 0; --l) {
    LayerBackward(params, l, ws, grad, l > 0 ? &d_input : nullptr);
    if (l > 0) {
      const Mat<T>& keep = ws->layers[l - 1].keep;
      if (keep.size() > 0) {
        d_out.noalias() = (d_input.array() * keep.array()).matrix();
      } else {
        d_out.swap(d_input);
      }
    }
  }
}

template <typename T>
void Network<T>::SeriesBackward(const T* params, const RowMatrixT<T>& d_pooled, Workspace* ws,
                                T* grad) const {
  if constexpr (std::is_same_v<T, float>) {
    const PackedBatch<T>& packed = ws->packed;
    const int n = packed.batch();
    const int h = arch_.hidden;
    const ParameterLayout::LayerOffsets& off = layout_.layer(0);
    const int64_t rows = ws->series_row[n];
    ConstMap<T> states(CacheLineAligned(&ws->series_states, rows * h), rows, h);
    ConstMap<T> inputs(CacheLineAligned(&ws->series_inputs, rows * off.in), rows, off.in);
    MutMap<T> d_pre(CacheLineAligned(&ws->series_d_pre, rows * h), rows, h);
    const bool mean = arch_.pooling == Pooling::kMean;
    const relu_kernels::Isa isa = relu_kernels::BestIsaFor(h);
    VectorT<T>& d_z = ws->series_d_z;
    for (int j = 0; j < n; ++j) {
      const int64_t r = ws->series_row[j];
      const int len = packed.lengths[j];
      d_z = d_pooled.row(j).transpose();
      if (mean) d_z /= static_cast<T>(len);
      relu_kernels::ReluRecurrenceBackward(isa, states.row(r + 1).data(), len, h, ws->kernel_a,
                                           d_z.data(), mean, d_pre.row(r).data(), grad + off.b);
      d_pre.row(r + len).setZero();
    }
    // Each series' block pairs d_pre_t with z_(t-1) in `states` and x_t in `inputs` (see
    // Workspace::series_row): two products over the whole batch.
    relu_kernels::AddTransposedProduct(isa, d_pre.data(), rows, h, states.data(), h, grad + off.a);
    relu_kernels::AddTransposedProduct(isa, d_pre.data(), rows, h, inputs.data(), off.in,
                                       grad + off.w);
  } else {
    (void)params, (void)d_pooled, (void)ws, (void)grad;
  }
}

template <typename T>
void Network<T>::LayerBackward(const T* params, int l, Workspace* ws, T* grad,
                               RowMatrixT<T>* d_input) const {
  const typename Workspace::Layer& layer = ws->layers[l];
  const PackedBatch<T>& packed = ws->packed;
  const ParameterLayout::LayerOffsets& off = layout_.layer(l);
  const int h = arch_.hidden;
  const int g = arch_.gates();
  const int steps = packed.steps();
  const Mat<T>& input = l == 0 ? packed.frames : layer.input;
  const Eigen::Index rows = input.rows();
  Mat<T>& d_out = ws->d_out;  // gradient w.r.t. this layer's outputs; updated in
                              // place through time
  Mat<T>& d_pre = ws->d_pre;  // gradient w.r.t. the input-side pre-activations (rows x g*h)
  d_pre.resize(rows, g * h);

  ConstMap<T> w(params + off.w, g * h, off.in);
  MutMap<T> dw(grad + off.w, g * h, off.in);
  MutVecMap<T> db(grad + off.b, g * h);

  if (arch_.cell == CellType::kRelu) {
    const Mat<T>& z = layer.out;
    if (!arch_.recurrent) {
      d_pre = (z.array() > T(0)).select(d_out, T(0));
    } else {
      ConstMap<T> a(params + off.a, h, h);
      for (int t = steps - 1; t >= 0; --t) {
        const int64_t o = packed.step_offset[t];
        const int bt = packed.step_rows[t];
        d_pre.middleRows(o, bt) =
            (z.middleRows(o, bt).array() > T(0)).select(d_out.middleRows(o, bt), T(0));
        if (t > 0)
          d_out.middleRows(packed.step_offset[t - 1], bt).noalias() += d_pre.middleRows(o, bt) * a;
      }
      MutMap<T> da(grad + off.a, h, h);
      da.noalias() += d_pre.transpose() * layer.prev;
    }
  } else if (arch_.cell == CellType::kGru) {
    ConstMap<T> a(params + off.a, g * h, h);
    Mat<T>& d_rec = ws->d_rec;
    d_rec.resize(rows, g * h);
    for (int t = steps - 1; t >= 0; --t) {
      const int64_t o = packed.step_offset[t];
      const int bt = packed.step_rows[t];
      auto gt = layer.gates.middleRows(o, bt);
      auto r = gt.leftCols(h).array();
      auto u = gt.middleCols(h, h).array();
      auto nn = gt.rightCols(h).array();
      auto dh = d_out.middleRows(o, bt).array();
      auto hp = layer.prev.middleRows(o, bt).array();
      auto dp = d_pre.middleRows(o, bt);
      auto dr = d_rec.middleRows(o, bt);
      // n = tanh(P_n + r * R_n); h = (1 - u) * n + u * h_prev.
      dp.rightCols(h) = (dh * (T(1) - u) * (T(1) - nn.square())).matrix();
      dp.leftCols(h) =
          (dp.rightCols(h).array() * layer.rn.middleRows(o, bt).array() * r * (T(1) - r)).matrix();
      dp.middleCols(h, h) = (dh * (hp - nn) * u * (T(1) - u)).matrix();
      dr.leftCols(2 * h) = dp.leftCols(2 * h);
      dr.rightCols(h) = (dp.rightCols(h).array() * r).matrix();
      if (t > 0) {
        auto dprev = d_out.middleRows(packed.step_offset[t - 1], bt);
        dprev.array() += dh * u;
        dprev.noalias() += dr * a;
      }
    }
    MutMap<T> da(grad + off.a, g * h, h);
    da.noalias() += d_rec.transpose() * layer.prev;
    MutVecMap<T> db_hh(grad + off.b_hh, g * h);
    db_hh += d_rec.colwise().sum();
  } else {
    ConstMap<T> a(params + off.a, g * h, h);
    Mat<T>& d_cell = ws->d_cell;
    d_cell.setZero(rows, h);
    for (int t = steps - 1; t >= 0; --t) {
      const int64_t o = packed.step_offset[t];
      const int bt = packed.step_rows[t];
      auto gt = layer.gates.middleRows(o, bt);
      auto i = gt.leftCols(h).array();
      auto f = gt.middleCols(h, h).array();
      auto gg = gt.middleCols(2 * h, h).array();
      auto og = gt.rightCols(h).array();
      auto dh = d_out.middleRows(o, bt).array();
      const auto tc = layer.cell.middleRows(o, bt).array().tanh().eval();
      auto dc = d_cell.middleRows(o, bt).array();
      dc += dh * og * (T(1) - tc.square());
      auto dp = d_pre.middleRows(o, bt);
      dp.leftCols(h) = (dc * gg * i * (T(1) - i)).matrix();
      dp.middleCols(h, h) =
          (dc * layer.cell_prev.middleRows(o, bt).array() * f * (T(1) - f)).matrix();
      dp.middleCols(2 * h, h) = (dc * i * (T(1) - gg.square())).matrix();
      dp.rightCols(h) = (dh * tc * og * (T(1) - og)).matrix();
      if (t > 0) {
        const int64_t op = packed.step_offset[t - 1];
        d_cell.middleRows(op, bt).array() += dc * f;
        d_out.middleRows(op, bt).noalias() += dp * a;
      }
    }
    MutMap<T> da(grad + off.a, g * h, h);
    da.noalias() += d_pre.transpose() * layer.prev;
  }

  dw.noalias() += d_pre.transpose() * input;
  db += d_pre.colwise().sum();
  if (d_input != nullptr) d_input->noalias() = d_pre * w;
}

void EmbedParallel(const Network<float>& network, const float* params,
                   absl::Span<const Series* const> series, int threads, RowMatrix* out,
                   ThreadPool* pool) {
  // Below this many frames, one thread is faster than starting another.
  constexpr int64_t kParallelFrames = 4096;
  // Chunks of this many series keep each chunk's packed frames in cache.
  constexpr int kChunk = 256;
  const int n = static_cast<int>(series.size());
  out->resize(n, network.architecture().embedding_dims());
  if (n == 0) return;
  int64_t frames = 0;
  for (const Series* s : series) frames += s->length();
  if (frames < kParallelFrames) threads = 1;
  const int chunks = (n + kChunk - 1) / kChunk;
  const int total = std::max(chunks, std::min(threads, n));
  auto embed_chunks = [&](int begin, int end, int) {
    thread_local Network<float>::Workspace ws;
    thread_local RowMatrix chunk_out;
    thread_local std::vector<const Series*> chunk;
    for (int c = begin; c < end; ++c) {
      const int first = static_cast<int>(static_cast<int64_t>(n) * c / total);
      const int last = static_cast<int>(static_cast<int64_t>(n) * (c + 1) / total);
      if (first == last) continue;
      chunk.assign(series.begin() + first, series.begin() + last);
      network.Embed(params, chunk, &ws, &chunk_out);
      out->middleRows(first, last - first) = chunk_out;
    }
  };
  if (network.EmbedsSeriesAlone()) {
    // The register kernel embeds one series faster than the batched layers embed one of many
    // (bench/model_bench.cc: about 3.5 us for an Arabic-shape series on one thread, against
    // 7 us per series per thread batched): each thread takes a contiguous share, one at a time.
    auto embed_each = [&](int begin, int end, int) {
      thread_local Network<float>::Workspace ws;
      thread_local RowMatrix row;
      for (int i = begin; i < end; ++i) {
        network.Embed(params, {series[i]}, &ws, &row);
        out->row(i) = row.row(0);
      }
    };
    if (threads == 1) {
      embed_each(0, n, 0);
      return;
    }
    if (pool == nullptr) pool = &ThreadPool::Default();
    pool->ParallelFor(n, threads, embed_each);
    return;
  }
  // A server's small requests stay on the calling thread without building a std::function.
  if (threads == 1) {
    embed_chunks(0, total, 0);
    return;
  }
  if (pool == nullptr) pool = &ThreadPool::Default();
  pool->ParallelFor(total, threads, embed_chunks);
}

template void PackBatch<float>(const std::vector<const Series*>&, PackedBatch<float>*);
template void PackBatch<double>(const std::vector<const Series*>&, PackedBatch<double>*);
template class Network<float>;
template class Network<double>;

}  // namespace srn
