#ifndef SRN_SERVER_SERIES_INPUT_H_
#define SRN_SERVER_SERIES_INPUT_H_

#include <string>

#include "absl/status/statusor.h"
#include "model/data/series.h"
#include "model/nn/similarity_model.h"
#include "srn/v1/similarity.pb.h"

namespace srn {

// What the server accepts in one request; every limit gives RESOURCE_EXHAUSTED when exceeded
// (a well-formed request that is too big) or INVALID_ARGUMENT (a malformed one).
struct RequestLimits {
  int max_series_length = 20000;  // frames per series (pen samples, and the frames they make)
  int max_batch = 256;            // series per Embed call
  int max_references = 64;        // references per subject
  int max_subject_id_length = 128;
  int max_top_k = 1000;
  // Refuse values the model cannot compute with (Preprocessor::FirstOutOfRange). Off only for
  // stored references, which an earlier server accepted: a restart must not fail on them.
  bool check_value_range = true;
};

// Turns one input series into the model's raw input: frames are checked against the model's
// feature count, and pen samples (signature models only) become signature features exactly as in
// training. InvalidArgument says what was wrong (empty, non-finite, not a multiple of
// num_features, wrong feature count, mismatched pen arrays, values or derived pen features out
// of the model's range: see kMaxStandardizedValue and kMaxRawValue in model/data/preprocess.h);
// ResourceExhausted when longer than the limit, pen samples included that resample to more
// frames than it (see ComputePenSignatureFeatures). `what` names the series in messages (e.g.
// "references[2]").
absl::StatusOr<Series> ToRawSeries(const v1::SeriesInput& input, const SimilarityModel& model,
                                   const RequestLimits& limits, const std::string& what);

// Like ToRawSeries, without a model (uploaded training data): frames of any positive feature
// count, pen samples become signature features. Errors as ToRawSeries.
absl::StatusOr<Series> ToTrainingSeries(const v1::SeriesInput& input, const RequestLimits& limits,
                                        const std::string& what);

// InvalidArgument unless `id` is 1..limits.max_subject_id_length characters of [A-Za-z0-9._:@-].
absl::Status ValidateSubjectId(const std::string& id, const RequestLimits& limits);

}  // namespace srn

#endif  // SRN_SERVER_SERIES_INPUT_H_
