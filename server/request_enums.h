#ifndef SRN_SERVER_REQUEST_ENUMS_H_
#define SRN_SERVER_REQUEST_ENUMS_H_

#include "absl/status/status.h"
#include "google/protobuf/message.h"

namespace srn {

// Proto3 enums are open: a request may carry a number the schema does not name (a newer client,
// a typo in a hand-written request), and reading it as the default would silently do something
// else than asked. InvalidArgument naming the first such field (its path, e.g.
// "spec.activation") and the values it allows; OK when every enum field of `request`, nested
// messages included, holds a known value. Walks only the fields that are set. Thread-safe.
absl::Status CheckKnownEnums(const google::protobuf::Message& request);

}  // namespace srn

#endif  // SRN_SERVER_REQUEST_ENUMS_H_
