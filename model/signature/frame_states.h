#ifndef SRN_MODEL_SIGNATURE_FRAME_STATES_H_
#define SRN_MODEL_SIGNATURE_FRAME_STATES_H_

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "model/data/series.h"
#include "model/eval/dtw.h"
#include "model/nn/similarity_model.h"

namespace srn {

// The learned verifier's frame representation: the encoder's per-frame hidden states, compared
// by DTW instead of pooled into one embedding (models trained by the frame-triplet objective,
// model/signature/frame_triplet_trainer.h). srn-eval's states-dtw score and srn-server's Verify
// both compute states and distances here. Thread-safe: the functions only read the model.

// The top layer's hidden state at every frame of a preprocessed series (T x hidden), normalized
// per frame as the model's metadata records it (FrameNormalizationOf: models trained with the
// frame-triplet objective may L2-normalize them), or the series itself for the logistic model.
// The model's recorded normalization must be readable (check FrameNormalizationOf first). The
// states feed DTW only: more than kMaxDtwFrames of them are resampled to that many (CapFrames).
Series HiddenStates(const SimilarityModel& model, const Series& preprocessed);

// HiddenStates of raw features: the model's preprocessing first. InvalidArgument (from the
// preprocessor) when the features do not fit the model, or the model records an unknown frame
// normalization.
absl::StatusOr<Series> FrameStates(const SimilarityModel& model, const Series& raw);

// The distance of two series of states: DTW with `dtw`'s band and frame cost, normalized by the
// sum of their lengths (NormalizedDtwDistance).
// With `cancel`, stops early once it says stop (see DtwDistance): check it before using the result.
double StatesDistance(const Series& a, const Series& b, const DtwOptions& dtw,
                      const Cancellation* cancel = nullptr);

// The spread D of a subject's references' states: the mean StatesDistance over the pairs (i, j),
// i < j, in order (1 for fewer than 2), as the states score divides by (LearnedScore::kStatesDtw).
double MeanMutualStatesDistance(absl::Span<const Series> states, const DtwOptions& dtw);

}  // namespace srn

#endif  // SRN_MODEL_SIGNATURE_FRAME_STATES_H_
