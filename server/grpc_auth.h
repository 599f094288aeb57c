#ifndef SRN_SERVER_GRPC_AUTH_H_
#define SRN_SERVER_GRPC_AUTH_H_

#include <map>
#include <memory>

#include "absl/status/statusor.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_interceptor.h"
#include "grpcpp/support/string_ref.h"
#include "server/auth.h"

namespace srn {

// The role of the caller of `ctx` from its "authorization" metadata. With authentication off
// the metadata is not read at all: building the call's metadata map costs allocations on every
// call.
absl::StatusOr<Role> CallerRole(const grpc::ServerContextBase& ctx, const TokenAuth& auth);

// The same from a call's initial metadata as the server received it.
absl::StatusOr<Role> CallerRole(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
                                const TokenAuth& auth);

// The role each method outside srn's own services needs, for what the service edge cannot
// check (services gRPC implements): server reflection needs the reader role (it describes the
// whole API, admin methods included); health needs none (load balancers call it without a
// token). With tokens on, a reflection call without the role gets no descriptor (each request
// it sends is answered as an unknown request) and ends UNAUTHENTICATED or PERMISSION_DENIED.
// `auth` must outlive the server; with authentication off the interceptor is never created.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewMethodRoleInterceptor(
    const TokenAuth* auth);

}  // namespace srn

#endif  // SRN_SERVER_GRPC_AUTH_H_
