#ifndef SRN_SERVER_GRPC_STATUS_H_
#define SRN_SERVER_GRPC_STATUS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace srn {

// The one place where internal statuses become gRPC statuses (the codes are the same numbers).
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace srn

#endif  // SRN_SERVER_GRPC_STATUS_H_
