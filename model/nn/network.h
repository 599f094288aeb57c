#ifndef SRN_MODEL_NN_NETWORK_H_
#define SRN_MODEL_NN_NETWORK_H_

#include <cstdint>
#include <random>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "model/nn/architecture.h"
#include "model/nn/parallel.h"
#include "model/nn/parameters.h"
#include "model/data/series.h"

namespace srn {

// A batch of series packed time-major, the way the encoder consumes it: series
// sorted by length (longest first) so that at step t the series still running
// are a prefix, and every step's frames are one contiguous block of rows. Every
// matrix product then covers the whole batch, and the input projection covers
// every frame of every series at once.
template <typename T>
struct PackedBatch {
  std::vector<int> order;            // order[j]: batch index of the j-th longest series
  std::vector<int> lengths;          // lengths[j] = frames of series order[j] (non-increasing)
  std::vector<int> step_rows;        // step_rows[t]: series with more than t frames
  std::vector<int64_t> step_offset;  // first row of step t
  RowMatrixT<T> frames;              // (total frames x dims)

  int batch() const { return static_cast<int>(order.size()); }
  int steps() const { return static_cast<int>(step_rows.size()); }
  int64_t rows() const { return frames.rows(); }
};

// Packs series (all with the same dims, none empty) into `out`, reusing its
// storage.
template <typename T>
void PackBatch(const std::vector<const Series*>& batch, PackedBatch<T>* out);

// The siamese encoder of an architecture: series -> embeddings, plus the
// backward pass through time for training. Parameters are not owned: every call
// takes a pointer to the flat parameter vector laid out by ParameterLayout. A
// Network holds no mutable state, so one instance serves many threads; each
// thread brings its own Workspace. T is float in production and double for
// gradient checks.
template <typename T>
class Network final {
 public:
  // Scratch space and, for training, everything the backward pass needs from
  // the forward pass. Reused across calls to avoid allocation; not thread-safe.
  struct Workspace {
    PackedBatch<T> packed;
    struct Layer {
      RowMatrixT<T> input;      // layer input, after dropout for layers above the first
      RowMatrixT<T> gates;      // relu: unused; gru: r,u,n; lstm: i,f,g,o (rows x gates*H)
      RowMatrixT<T> out;        // z_t for every frame (rows x H)
      RowMatrixT<T> prev;       // z_{t-1} aligned with each frame's row (zeros at t = 0)
      RowMatrixT<T> rn;         // gru: A_n z_{t-1} + b_hh_n
      RowMatrixT<T> cell;       // lstm: c_t
      RowMatrixT<T> cell_prev;  // lstm: c_{t-1}
      RowMatrixT<T> keep;       // dropout mask applied to `out` before the next layer (scaled)
      RowMatrixT<T> carry_z,
          carry_c;  // Embed: z and (lstm) c at the last step of a block
    };
    std::vector<Layer> layers;
    RowMatrixT<T> pooled;    // (batch x E) in packed order, before dropout
    RowMatrixT<T> emb_keep;  // dropout mask on the embedding (scaled), empty if none
    // Embed runs the layers over blocks of consecutive time steps of about this
    // many rows (frames of all series), so that each block's intermediate
    // values stay in cache; it keeps only the pooled result and the state
    // carried from block to block. Training keeps every frame.
    int64_t block_rows = 1024;
    PackedBatch<T> block;
    // Backward scratch.
    RowMatrixT<T> d_out, d_pre, d_rec, d_prev, d_cell;
    // Training series by series (TrainsSeriesAlone): the weights as the register kernels read
    // them, and for the j-th series in packed order a block of length + 1 rows from
    // series_row[j]: states [0, z_0 .. z_(L-1)], inputs [x_0 .. x_(L-1), 0] and d_pre
    // [d_0 .. d_(L-1), 0], so that one product over all blocks pairs every d_pre_t with
    // z_(t-1) and with x_t. Each buffer's rows (row-major) start on a cache line inside it.
    VectorT<T> kernel_weights;
    T* kernel_wt = nullptr;  // in x h, in kernel_weights
    T* kernel_at = nullptr;  // h x h
    T* kernel_a = nullptr;   // h x h
    VectorT<T> series_states, series_inputs, series_d_pre;
    std::vector<int64_t> series_row;
    VectorT<T> series_d_z;
  };

  // With `inference_weights`, the network takes parameters as
  // InferenceWeights() returns them, and only embeds (Forward and Backward need
  // the training order).
  Network(const Architecture& arch, const ParameterLayout& layout, bool inference_weights = false);

  // The parameters rearranged for fast embedding (each relu layer's recurrent
  // matrix A stored transposed, so that a single series' step reads contiguous
  // rows of A^T and skips the rows whose state is zero). Same size as `params`.
  VectorT<T> InferenceWeights(const VectorT<T>& params) const;

  const Architecture& architecture() const { return arch_; }

  // Whether Embed runs a batch of one through the single-series register kernel
  // (model/relu_kernels.h: ReLU layers, inference weights, a width the CPU's
  // kernel takes). Such a network embeds series faster one at a time than
  // batched, and a series' embedding then does not depend on its batch.
  bool EmbedsSeriesAlone() const;

  // Whether Forward and Backward run each series of a training batch through the register
  // kernels (one ReLU layer, training weights, float, a width the CPU's kernel takes) instead
  // of batching every step's matrix products across series: the kernels skip the zero states
  // (about half) going forward and the zero pre-activation gradients going back, and the weight
  // gradients become two products over the whole batch. Both paths compute the same
  // gradients up to rounding.
  bool TrainsSeriesAlone() const;

  // Embeds `batch` (preprocessed series of architecture().input_dims features)
  // into `out` (batch.size() x embedding_dims), row i for batch[i]. No dropout.
  void Embed(const T* params, const std::vector<const Series*>& batch, Workspace* ws,
             RowMatrixT<T>* out) const;

  // Training forward pass: like Embed, but keeps what Backward needs in `ws`
  // and applies inverted dropout with rate `dropout` (0 = none) between layers
  // and on the embedding.
  void Forward(const T* params, const std::vector<const Series*>& batch, T dropout,
               std::mt19937_64* rng, Workspace* ws, RowMatrixT<T>* out) const;

  // Backpropagation through time for the last Forward: adds d(loss)/d(params)
  // to `grad` given d(loss)/d(embeddings) `d_emb` (batch x E, in batch order).
  // Head tensors are untouched.
  void Backward(const T* params, const RowMatrixT<T>& d_emb, Workspace* ws, T* grad) const;

  // Backpropagation through time for the last Forward from the top layer's per-frame states
  // instead of the embedding: adds d(loss)/d(params) to `grad` given d(loss)/d(states)
  // `d_states` (packed.rows() x hidden, in the packed row order Forward stores the states in,
  // ws->layers.back().out: row step_offset[t] + j is frame t of series packed.order[j]). The
  // pooling, the embedding's dropout and the head are untouched; dropout between layers is
  // applied as in Backward. Needs the batched training path: FailedPrecondition for the logistic
  // model, when TrainsSeriesAlone() (one float ReLU layer: use a GRU or LSTM cell, or two
  // layers), or when `ws` holds no training Forward of this network; InvalidArgument when
  // d_states has the wrong shape. Nothing is added to `grad` on error.
  absl::Status BackwardFrames(const T* params, const RowMatrixT<T>& d_states, Workspace* ws,
                              T* grad) const;

 private:
  void Run(const T* params, T dropout, std::mt19937_64* rng, bool training, Workspace* ws,
           RowMatrixT<T>* out) const;
  // Embed without keeping every frame: see Workspace::block_rows.
  void RunBlocked(const T* params, Workspace* ws, RowMatrixT<T>* out) const;
  // One layer over all steps of `packed`. init_z / init_c (nullptr: zeros) is
  // the state before the first step, one row per series of that step.
  void LayerForward(const T* params, int l, bool training, typename Workspace::Layer* layer,
                    const PackedBatch<T>& packed, const RowMatrixT<T>* init_z,
                    const RowMatrixT<T>* init_c) const;
  void LayerBackward(const T* params, int l, Workspace* ws, T* grad, RowMatrixT<T>* d_input) const;
  // Every layer's LayerBackward, top to bottom, from d(loss)/d(top layer's states) in ws->d_out.
  void BackwardLayers(const T* params, Workspace* ws, T* grad) const;
  // The TrainsSeriesAlone path of Forward and Backward (d_pooled in packed order, after
  // the embedding's dropout).
  void SeriesForward(const T* params, const std::vector<const Series*>& batch, T dropout,
                     std::mt19937_64* rng, Workspace* ws, RowMatrixT<T>* out) const;
  void SeriesBackward(const T* params, const RowMatrixT<T>& d_pooled, Workspace* ws, T* grad) const;
  // ws->pooled (packed order) -> out (batch order), with inverted dropout at rate `dropout`
  // (0: none) on the embedding.
  void EmitPooled(T dropout, std::mt19937_64* rng, Workspace* ws, RowMatrixT<T>* out) const;

  const Architecture arch_;
  const ParameterLayout layout_;
  const bool inference_weights_;
};

// Embeds many series with `threads` threads (fewer for small batches), each
// working through its share in chunks with its own thread-local workspace. out:
// (series.size() x embedding_dims).
void EmbedParallel(const Network<float>& network, const float* params,
                   absl::Span<const Series* const> series, int threads, RowMatrix* out,
                   ThreadPool* pool = nullptr);

extern template class Network<float>;
extern template class Network<double>;

}  // namespace srn

#endif  // SRN_MODEL_NN_NETWORK_H_
