#ifndef SRN_SERVER_GRPC_AUTH_H_
#define SRN_SERVER_GRPC_AUTH_H_

#include "absl/status/statusor.h"
#include "grpcpp/server_context.h"
#include "server/auth.h"

namespace srn {

// The role of the caller of `ctx` from its "authorization" metadata. With authentication off
// the metadata is not read at all: building the call's metadata map costs allocations on every
// call.
absl::StatusOr<Role> CallerRole(const grpc::ServerContextBase& ctx, const TokenAuth& auth);

}  // namespace srn

#endif  // SRN_SERVER_GRPC_AUTH_H_
