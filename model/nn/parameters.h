#ifndef SRN_MODEL_NN_PARAMETERS_H_
#define SRN_MODEL_NN_PARAMETERS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "model/nn/architecture.h"
#include "model/data/series.h"

namespace srn {

// One named tensor inside the flat parameter vector (row-major, rows x cols, from offset).
struct TensorSpec {
  std::string name;
  int rows = 0;
  int cols = 0;
  int64_t offset = 0;
  int64_t size() const { return static_cast<int64_t>(rows) * cols; }
};

// Where each weight of an architecture lives in one flat vector, so that optimizers, gradient
// checks and the weights file all treat the parameters as a single array. Per layer l:
//   l<l>.W     (gates*H x in)   input weights, gate blocks stacked as in PyTorch (gru: r,z,n;
//                               lstm: i,f,g,o)
//   l<l>.A     (gates*H x H)    recurrent weights (absent for SN models)
//   l<l>.b     (gates*H x 1)    bias
//   l<l>.b_hh  (3H x 1)         GRU only: recurrent bias (n gate sees r * (A_n z + b_hh_n))
// and the head: v (E x 1), c (1 x 1). The logistic model has only the head.
// Immutable after construction; safe to share between threads.
class ParameterLayout final {
 public:
  explicit ParameterLayout(const Architecture& arch);

  const std::vector<TensorSpec>& tensors() const { return tensors_; }
  int64_t total_size() const { return total_; }
  // nullptr when the layout has no tensor of that name.
  const TensorSpec* Find(const std::string& name) const;

  // Offsets of a layer's tensors (-1 where absent), for the network's hot path.
  struct LayerOffsets {
    int64_t w = -1, a = -1, b = -1, b_hh = -1;
    int in = 0;
  };
  const LayerOffsets& layer(int l) const { return layers_[l]; }
  int64_t v_offset() const { return v_offset_; }
  int64_t c_offset() const { return c_offset_; }

 private:
  int64_t Add(std::string name, int rows, int cols);

  std::vector<TensorSpec> tensors_;
  std::vector<LayerOffsets> layers_;
  int64_t v_offset_ = 0;
  int64_t c_offset_ = 0;
  int64_t total_ = 0;
};

// Uniform initialisation in [-scale, scale] (the paper uses 0.1), deterministic for a seed.
// Biases start at zero, except LSTM forget-gate biases at 1.
Vector InitParameters(const Architecture& arch, float scale, uint64_t seed);

}  // namespace srn

#endif  // SRN_MODEL_NN_PARAMETERS_H_
