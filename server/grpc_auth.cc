#include "server/grpc_auth.h"

#include <string>

namespace srn {

absl::StatusOr<Role> CallerRole(const grpc::ServerContextBase& ctx, const TokenAuth& auth) {
  if (!auth.enabled()) return Role::kAdmin;
  const auto& metadata = ctx.client_metadata();
  const auto it = metadata.find("authorization");
  const std::string authorization =
      it == metadata.end() ? std::string() : std::string(it->second.data(), it->second.size());
  return auth.Authenticate(&authorization);
}

}  // namespace srn
