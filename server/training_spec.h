#ifndef SRN_SERVER_TRAINING_SPEC_H_
#define SRN_SERVER_TRAINING_SPEC_H_

#include "absl/status/statusor.h"
#include "model/train/train_config.h"
#include "srn/v1/training.pb.h"

namespace srn {

// A job's TrainingSpec and the training configuration it stands for. The hyperparameters are
// completed and checked by CompleteTrainSettings (model/train/train_config.h), as srn-train's
// and srnctl's are; only the job's own fields (activation, description) are checked here. Pure
// functions: thread-safe.

// Fills the documented defaults of a spec (see training.proto: a zero or empty field asks for its
// default) and checks every value; InvalidArgument names the first bad field and its range.
absl::StatusOr<v1::TrainingSpec> CompleteTrainingSpec(const v1::TrainingSpec& spec);

// What the trainer runs for a completed spec (MakeTrainConfig); the caller sets kind and the
// fields that are not the spec's (training_data, command, options.threads).
absl::StatusOr<TrainConfig> TrainConfigOf(const v1::TrainingSpec& spec);

}  // namespace srn

#endif  // SRN_SERVER_TRAINING_SPEC_H_
