#ifndef SRN_MODEL_DATA_SIGCOMP2009_H_
#define SRN_MODEL_DATA_SIGCOMP2009_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/data/dataset.h"
#include "model/data/signature_features.h"

namespace srn {

// The online signatures of the ICDAR 2009 Signature Verification Competition (SigComp2009): the
// NFI set and (part of) the NISDCC training set, `.hwr` files from a Wacom tablet at 200 Hz that
// records hovering too (see sigcomp2009/SOURCE.md in the data folder and docs/DATA_FORMATS.md).
// Thread-compatible.

inline constexpr double kSigComp2009RateHz = 200.0;
inline constexpr double kSigComp2009StepMs = 1000.0 / kSigComp2009RateHz;  // 5 ms per row

enum class SigComp2009Subset {
  kNfi,     // NFI/: files NFI-<www><ss><aaa>.hwr
  kNisdcc,  // NISDCC/: files NISDCC-<www>_<aaa>_<sss>.hwr
};

// "nfi" or "nisdcc".
std::string SigComp2009SubsetName(SigComp2009Subset subset);

// Reads one .hwr file: a header line `<tag> <N>` (the tag is not used: NFI's is a placeholder),
// then N rows of 5 integers `X Y P Azimuth Altitude`, where P > 0 is the pressure of a pen-down
// row, P = 0 or -1 marks hovering (pen up, still tracked) and P = -4 a marker row (`0 0 -4 0 0`,
// in pairs: a recording break). Returns the pen-down rows only, as the PenSample convention
// wants: x = X, y = Y, pressure = P, t_ms = 5 * (the row's index among all N rows, hovering and
// marker rows included: the file has no time column, and the tablet samples at 200 Hz), and
// stroke_start on the first pen-down row and on each one after a hovering or marker row.
// Azimuth and altitude are not used (some hovering rows carry garbage there).
// NotFound for a missing file. InvalidArgument "<file>:<line>: ..." for a bad header, a row
// without exactly 5 integers, a P below -1 other than -4, or rows that disagree with N;
// InvalidArgument "<file>: ..." when no row is pen-down.
absl::StatusOr<std::vector<PenSample>> ReadSigComp2009File(const std::string& path);

// Like ReadSigComp2009File, from the file's content held in memory; messages name
// `name_for_errors`.
absl::StatusOr<std::vector<PenSample>> ParseSigComp2009File(absl::string_view text,
                                                            absl::string_view name_for_errors);

// Loads one subset from the SigComp2009 folder `dir` (which holds NFI/ and NISDCC/): every .hwr
// file of <subset>/genuine/ and <subset>/forgery/ (other files are ignored). From the file name,
// www is the writer and aaa the author whose signature it is (the claimed identity); a file is a
// skilled forgery iff www != aaa, and must sit in genuine/ iff www == aaa. Examples: label = the
// author's rank among all authors of the subset's files (label_names "NFI-<aaa>" or
// "NISDCC-<aaa>"), so a forgery's label is the forged author; forgery = www != aaa; group = www
// (the forger of a forgery); source = the file path; series = ComputeTabletSignatureFeatures of
// the file's samples at kSigComp2009RateHz (resampled to 100 Hz), with pressure. Ordered by
// author, genuine before forgeries, then writer and sample. Dataset name "sigcomp2009-nfi" or
// "sigcomp2009-nisdcc". NotFound naming a missing folder or file; InvalidArgument naming the file
// for a name that does not follow the subset's pattern, a file in the wrong folder, an empty
// subset, and (prefixed with the path) for what ReadSigComp2009File or the features refuse.
absl::StatusOr<Dataset> LoadSigComp2009(const std::string& dir, SigComp2009Subset subset);

}  // namespace srn

#endif  // SRN_MODEL_DATA_SIGCOMP2009_H_
