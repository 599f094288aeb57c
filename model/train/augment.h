#ifndef SRN_MODEL_TRAIN_AUGMENT_H_
#define SRN_MODEL_TRAIN_AUGMENT_H_

#include <random>

#include <string>

#include "absl/status/statusor.h"
#include "model/data/dataset.h"
#include "model/data/preprocess.h"
#include "model/data/series.h"

namespace srn {

// Data augmentation of training series: perturbed copies that keep their label.
//
// Online signatures are augmented on the 12 features of ComputeSignatureFeatures (not on raw pen
// samples, so that datasets keep holding features).
//
// A perturbed copy is what the same signer might have written with the tablet slightly turned or
// stretched and the pen a little faster or slower in places:
//   affine     (x, y) -> M (x, y) with M = rotation(a) * [[1 + sx, h], [0, 1 + sy]], a, sx, sy,
//              h uniform in +-max_rotation (radians), +-max_scale, +-max_shear. Velocities and
//              accelerations are mapped by the same M; then coordinates are re-centred and
//              re-scaled to unit RMS radius (derivatives by the same factor), and speed, cos and
//              sin are recomputed, so the copy satisfies the feature definitions again.
//   time warp  frame k of the copy (T' = round(T * (1 + l)) frames, l uniform in
//              +-max_length_change) reads the original at position u(k) = (T - 1) g(k / (T' - 1)),
//              g(s) = s + w sin(2 pi c s) / (2 pi c) with c in {1, 2} and w uniform in +-time_warp
//              (< 1, so g is increasing), by linear interpolation; the stroke-start flag is taken
//              from the nearest original frame. The pen moves faster where g' > 1: first
//              derivatives are multiplied by the local rate r = (T - 1) g' / (T' - 1) and second
//              derivatives by r^2.
//
// Frames (e.g. MFCCs of speech) get the same time warp, every feature interpolated alike (a
// speaker talking a little faster or slower in places), then Gaussian noise of `noise` times
// each feature's own standard deviation over the series.
// Pressure dropout (signatures only): after the copies are made, every example of the result,
// original or copy, independently has its pressure features (p and dp, columns 9 and 10 of
// ComputeSignatureFeatures) set to zero with probability `pressure_dropout`, as a tablet without
// pressure gives them, so that one model learns to verify with and without pressure. Its draws
// come from their own generator (seeded by `seed`), so the copies are the same with or without it.
// Pure given the generator; thread-compatible.

struct AugmentOptions {
  int copies = 0;  // perturbed copies added per training example (0: no augmentation)
  double max_rotation = 0.08;      // radians (about 4.6 degrees)
  double max_scale = 0.08;
  double max_shear = 0.08;
  double time_warp = 0.3;
  double max_length_change = 0.1;
  double noise = 0.0;  // frames only (see above)
  double pressure_dropout = 0.0;  // signatures only: [0, 1] (see above)
  uint64_t seed = 1;
};

// Whether AugmentDataset changes anything (copies or pressure dropout).
inline bool AugmentsData(const AugmentOptions& options) {
  return options.copies > 0 || options.pressure_dropout > 0;
}

// The options as a weights file's metadata records them ("rotation 0.08 scale ..."; "...
// pressure_dropout 0.3" only when it is on, so older records read the same).
std::string DescribeAugment(const AugmentOptions& options);

// One perturbed copy of a signature feature series. InvalidArgument unless the series has
// kSignatureFeatureDims features and at least 2 frames, or when the options are out of range
// (negative amplitudes, time_warp >= 1, max_length_change >= 1).
absl::StatusOr<Series> AugmentSignature(const Series& features, const AugmentOptions& options,
                                        std::mt19937_64* rng);

// One perturbed copy of a series of frames (time warp and noise). InvalidArgument on fewer than 2
// frames or options out of range (as AugmentSignature, and a negative noise).
absl::StatusOr<Series> AugmentFrames(const Series& frames, const AugmentOptions& options,
                                     std::mt19937_64* rng);

// `data` followed by options.copies perturbed copies of every example (same label, forgery flag
// and group; source suffixed "#aug<k>"): AugmentSignature for kSignature data, AugmentFrames for
// kFrames, drawn from a generator seeded by options.seed; then pressure dropout over all of them.
// The error names the failing example; InvalidArgument for pressure dropout on kFrames data or
// on series without kSignatureFeatureDims features.
absl::StatusOr<Dataset> AugmentDataset(const Dataset& data, const AugmentOptions& options,
                                       FeatureKind kind);

}  // namespace srn

#endif  // SRN_MODEL_TRAIN_AUGMENT_H_
