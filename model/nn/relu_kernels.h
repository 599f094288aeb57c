#ifndef SRN_MODEL_NN_RELU_KERNELS_H_
#define SRN_MODEL_NN_RELU_KERNELS_H_

// Kernels for one series through one recurrent ReLU layer: inference (the shape of a server's
// Embed and Verify calls) and training's forward and backward passes, series by series.
// Internal to the model library (Network uses them; tests call each instruction-set variant
// directly).
//
// Weights are in the layout of Network::InferenceWeights: W^T (in x h) and A^T (h x h), both
// row-major, so that the contribution of input feature k (or of state j) is one contiguous row.
// Each step is z_t = relu(b + x_t W^T + z_{t-1} A^T): the dense input rows and the non-zero
// rows of the previous state (about half of a ReLU state is zero) are accumulated into
// registers holding the step's outputs; nothing is packed or blocked.

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace srn {
namespace relu_kernels {

// Instruction sets a kernel can use. The library is built for AVX2 (no -march=native); the
// AVX-512 variant is compiled for it with a function attribute and chosen at run time.
// Ordered: a CPU with one of them has those before it.
enum class Isa { kNone, kAvx2, kAvx512 };

// The best variant this CPU (and OS) runs, within the cap (CapIsa, else the environment variable
// SRN_KERNELS: "auto" or unset for no cap, "avx2", "portable").
Isa BestIsa();

// Which kernels may run, by name: "auto" (the best the CPU has, AVX-512 included), "avx2" (never
// AVX-512: the same results on every CPU with AVX2, with or without AVX-512), "portable" (none:
// the generic Eigen code). InvalidArgument naming the accepted values otherwise.
absl::StatusOr<Isa> ParseKernels(absl::string_view name);
// Caps BestIsa at `cap` from now on (tools call it once, before any work, from their --kernels).
void CapIsa(Isa cap);

// Whether `isa` has a kernel for `hidden` units (AVX2: a multiple of 8; AVX-512: of 16) and the
// CPU runs it.
bool Supported(Isa isa, int hidden);

// The best variant this CPU runs for `hidden` units (AVX2 where the width is not a multiple of
// 16), kNone if there is none.
Isa BestIsaFor(int hidden);

// The non-zero entries of z[0..h), in order: their indices and values (each list has room for
// h entries); returns their number. Any h; `isa` must run on this CPU (kNone: scalar).
int NonZeros(Isa isa, const float* z, int h, int* index, float* value);

// Runs the layer over `steps` frames of `x` (steps x in, row-major) into `z` (steps x h,
// row-major, not aliasing x). `init` is z_{-1} (h values; null for zeros). With `sum` (h values,
// not aliasing the others), every z_t is also added to it, for mean pooling. Requires
// Supported(isa, h).
void ReluRecurrence(Isa isa, const float* x, int64_t steps, int in, const float* wt, const float* b,
                    const float* at, int h, const float* init, float* z, float* sum = nullptr);

// The same layer keeping only what pooling needs: `out` (h values) is the mean of z_t over the
// steps (`mean`) or the last z_t, from z_{-1} = 0. `out` must not alias the inputs.
void ReluRecurrencePooled(Isa isa, const float* x, int64_t steps, int in, const float* wt,
                          const float* b, const float* at, int h, bool mean, float* out);

// Backpropagation through ReluRecurrence's steps from z_{-1} = 0, for training. `z` (steps x h)
// is what ReluRecurrence wrote; `a` is A itself (h x h, row-major: the transpose of the
// forward's A^T). The loss reaches z_t through pooling: d(loss)/d(z_t) is `d_z` (h values) at
// every step (`every_step`, mean pooling, already divided by the length) or at the last step
// only. Writes d_pre (steps x h, not aliasing the inputs): d(loss)/d(pre-activation) of every
// step, from which the caller forms the weight gradients dA = sum_t d_pre_t^T z_(t-1) and
// dW = sum_t d_pre_t^T x_t (AddTransposedProduct); the bias gradient sum_t d_pre_t is added to
// `d_bias` on the way. The gradient carried into z_(t-1) is d_pre_t A, accumulated over the
// rows of A for d_pre_t's non-zeros. Requires Supported(isa, h).
void ReluRecurrenceBackward(Isa isa, const float* z, int64_t steps, int h, const float* a,
                            const float* d_z, bool every_step, float* d_pre, float* d_bias);

// c (m x n) += d^T s, for d (rows x m) and s (rows x n); all row-major and contiguous, c not
// aliasing d or s. The weight gradients dA and dW from every step's d_pre and the states or
// inputs paired with it. Any n; requires Supported(isa, m).
void AddTransposedProduct(Isa isa, const float* d, int64_t rows, int m, const float* s, int n,
                          float* c);

}  // namespace relu_kernels
}  // namespace srn

#endif  // SRN_MODEL_NN_RELU_KERNELS_H_
