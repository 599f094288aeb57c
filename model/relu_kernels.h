#ifndef SRN_MODEL_RELU_KERNELS_H_
#define SRN_MODEL_RELU_KERNELS_H_

// Inference kernels for one series through one recurrent ReLU layer, the shape of a server's
// Embed and Verify calls. Internal to the model library (Network uses them; tests call each
// instruction-set variant directly).
//
// Weights are in the layout of Network::InferenceWeights: W^T (in x h) and A^T (h x h), both
// row-major, so that the contribution of input feature k (or of state j) is one contiguous row.
// Each step is z_t = relu(b + x_t W^T + z_{t-1} A^T): the dense input rows and the non-zero
// rows of the previous state (about half of a ReLU state is zero) are accumulated into
// registers holding the step's outputs; nothing is packed or blocked.

#include <cstdint>

namespace srn {
namespace relu_kernels {

// Instruction sets a kernel can use. The library is built for AVX2 (no -march=native); the
// AVX-512 variant is compiled for it with a function attribute and chosen at run time.
// Ordered: a CPU with one of them has those before it.
enum class Isa { kNone, kAvx2, kAvx512 };

// The best variant this CPU (and OS) runs.
Isa BestIsa();

// Whether `isa` has a kernel for `hidden` units (AVX2: a multiple of 8; AVX-512: of 16) and the
// CPU runs it.
bool Supported(Isa isa, int hidden);

// The non-zero entries of z[0..h), in order: their indices and values (each list has room for
// h entries); returns their number. Any h; `isa` must run on this CPU (kNone: scalar).
int NonZeros(Isa isa, const float* z, int h, int* index, float* value);

// Runs the layer over `steps` frames of `x` (steps x in, row-major) into `z` (steps x h,
// row-major, not aliasing x). `init` is z_{-1} (h values; null for zeros). Requires
// Supported(isa, h).
void ReluRecurrence(Isa isa, const float* x, int64_t steps, int in, const float* wt, const float* b,
                    const float* at, int h, const float* init, float* z);

// The same layer keeping only what pooling needs: `out` (h values) is the mean of z_t over the
// steps (`mean`) or the last z_t, from z_{-1} = 0. `out` must not alias the inputs.
void ReluRecurrencePooled(Isa isa, const float* x, int64_t steps, int in, const float* wt,
                          const float* b, const float* at, int h, bool mean, float* out);

}  // namespace relu_kernels
}  // namespace srn

#endif  // SRN_MODEL_RELU_KERNELS_H_
