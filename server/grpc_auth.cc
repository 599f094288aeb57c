#include "server/grpc_auth.h"

#include <string>

#include "absl/strings/match.h"
#include "google/protobuf/message.h"
#include "server/grpc_status.h"

namespace srn {
namespace {

// Server reflection, every version (v1alpha in gRPC 1.51, v1 later).
constexpr absl::string_view kReflectionPrefix = "/grpc.reflection.";

// Refuses a call whose caller lacks the role: the status is recorded once the metadata is in,
// every request message is emptied (so the service answers none of them with what it asked for)
// and the call's status is replaced by the refusal.
class RoleInterceptor final : public grpc::experimental::Interceptor {
 public:
  RoleInterceptor(const TokenAuth* auth, Role required, std::string method)
      : auth_(auth), required_(required), method_(std::move(method)) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using Hook = grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(Hook::POST_RECV_INITIAL_METADATA)) {
      absl::StatusOr<Role> role = CallerRole(*methods->GetRecvInitialMetadata(), *auth_);
      absl::Status allowed =
          role.ok() ? TokenAuth::Authorize(*role, required_, method_) : role.status();
      if (!allowed.ok()) refusal_ = ToGrpcStatus(allowed);
    }
    if (!refusal_.ok()) {
      if (methods->QueryInterceptionHookPoint(Hook::POST_RECV_MESSAGE)) {
        // Every generated request type is a protobuf message (single inheritance, so the
        // address is the message's).
        if (void* message = methods->GetRecvMessage(); message != nullptr) {
          static_cast<google::protobuf::Message*>(message)->Clear();
        }
      }
      if (methods->QueryInterceptionHookPoint(Hook::PRE_SEND_STATUS)) {
        methods->ModifySendStatus(refusal_);
      }
    }
    methods->Proceed();
  }

 private:
  const TokenAuth* const auth_;
  const Role required_;
  const std::string method_;
  grpc::Status refusal_;  // OK unless the caller lacks the role
};

class RoleInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RoleInterceptorFactory(const TokenAuth* auth) : auth_(auth) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    if (!auth_->enabled() || info->method() == nullptr ||
        !absl::StartsWith(info->method(), kReflectionPrefix)) {
      return nullptr;
    }
    return new RoleInterceptor(auth_, Role::kReader, "server reflection");
  }

 private:
  const TokenAuth* const auth_;
};

}  // namespace

absl::StatusOr<Role> CallerRole(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
                                const TokenAuth& auth) {
  if (!auth.enabled()) return Role::kAdmin;
  const auto it = metadata.find("authorization");
  const std::string authorization =
      it == metadata.end() ? std::string() : std::string(it->second.data(), it->second.size());
  return auth.Authenticate(&authorization);
}

absl::StatusOr<Role> CallerRole(const grpc::ServerContextBase& ctx, const TokenAuth& auth) {
  if (!auth.enabled()) return Role::kAdmin;
  return CallerRole(ctx.client_metadata(), auth);
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewMethodRoleInterceptor(
    const TokenAuth* auth) {
  return std::make_unique<RoleInterceptorFactory>(auth);
}

}  // namespace srn
