#ifndef SRN_MODEL_DATA_SVC2004_H_
#define SRN_MODEL_DATA_SVC2004_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "model/data/dataset.h"
#include "model/data/signature_features.h"

namespace srn {

// The public SVC2004 signatures, Task 2 (with pressure) and Task 1 (pen position only): two
// separate recordings of 40 users each (see svc2004/SOURCE.md and svc2004/Task1/SOURCE.md in the
// data folder, and docs/DATA_FORMATS.md). Thread-compatible.

inline constexpr int kSvc2004Users = 40;
inline constexpr int kSvc2004SignaturesPerUser = 40;
inline constexpr int kSvc2004GenuinePerUser = 20;  // S1-S20; S21-S40 are skilled forgeries
inline constexpr double kSvc2004RateHz = 100.0;    // the tablet's nominal rate (10 ms steps)

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

// Like ReadSvc2004File, from the file's content held in memory; messages name `name_for_errors`.
absl::StatusOr<std::vector<PenSample>> ParseSvc2004File(absl::string_view text,
                                                        absl::string_view name_for_errors,
                                                        bool* has_pressure = nullptr);

// Loads `users` (each in 1..40) from a Task2 folder: 40 examples per user, in user order then
// S1..S40. label = user - 1 (label_names "U1".."U40" for all 40 users, whatever subset is
// loaded), forgery = (s > 20), group = s, series = ComputeTabletSignatureFeatures of the file's
// samples at kSvc2004RateHz (that is, ComputeSignatureFeatures as recorded), source = file path.
// Dataset name "svc2004". Errors name the file.
absl::StatusOr<Dataset> LoadSvc2004Users(const std::string& task2_dir, absl::Span<const int> users);

// All 40 users: 1600 examples.
absl::StatusOr<Dataset> LoadSvc2004(const std::string& task2_dir);

// All 40 users of a Task1 folder (U1S1.TXT .. U40S40.TXT, 4 integers per sample line): 1600
// examples labelled as LoadSvc2004's (these U1..U40 are other people than Task 2's), features
// without pressure. Dataset name "svc2004-task1". InvalidArgument naming the file when one has
// Task 2's 7-integer layout; otherwise errors as LoadSvc2004Users.
absl::StatusOr<Dataset> LoadSvc2004Task1(const std::string& task1_dir);

}  // namespace srn

#endif  // SRN_MODEL_DATA_SVC2004_H_
