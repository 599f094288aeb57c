#ifndef SRN_MODEL_DATA_SVC2004_H_
#define SRN_MODEL_DATA_SVC2004_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "model/data/dataset.h"
#include "model/data/signature_features.h"

namespace srn {

// The public SVC2004 Task 2 signatures (see svc2004/SOURCE.md in the data folder and
// docs/DATA_FORMATS.md). Thread-compatible.

inline constexpr int kSvc2004Users = 40;
inline constexpr int kSvc2004SignaturesPerUser = 40;
inline constexpr int kSvc2004GenuinePerUser = 20;  // S1-S20; S21-S40 are skilled forgeries

// Reads one U<u>S<s>.TXT file: a first line N, then N lines of 7 integers
// `X Y TimeStamp ButtonStatus Azimuth Altitude Pressure` (Task 2) or of 4 integers
// `X Y TimeStamp ButtonStatus` (Task 1 layout, no pressure); every line must have the same
// count. stroke_start = (ButtonStatus & 1) == 0 (an even status marks the first point after a
// pen-up); t_ms is relative to the first sample. `*has_pressure` (if given) tells whether the
// file had the pressure column. NotFound with the path for a missing file; InvalidArgument
// "<file>:<line>: ..." for a bad count or sample line, or when the file holds more or fewer
// sample lines than N.
absl::StatusOr<std::vector<PenSample>> ReadSvc2004File(const std::string& path,
                                                       bool* has_pressure = nullptr);

// Loads `users` (each in 1..40) from a Task2 folder: 40 examples per user, in user order then
// S1..S40. label = user - 1 (label_names "U1".."U40" for all 40 users, whatever subset is
// loaded), forgery = (s > 20), group = s, series = ComputeSignatureFeatures of the file's
// samples, source = file path. Dataset name "svc2004". Errors name the file.
absl::StatusOr<Dataset> LoadSvc2004Users(const std::string& task2_dir, absl::Span<const int> users);

// All 40 users: 1600 examples.
absl::StatusOr<Dataset> LoadSvc2004(const std::string& task2_dir);

}  // namespace srn

#endif  // SRN_MODEL_DATA_SVC2004_H_
