// TLS and mutual TLS, end to end, with a throwaway CA and certificates made by `openssl` at test
// time.

#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/e2e_fixture.h"

namespace srn::testing {
namespace {

using ::testing::StartsWith;

constexpr char kOpensslConfig[] = R"([req]
distinguished_name = dn
prompt = no
[dn]
CN = srn test
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
[client]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
)";

std::string FindOpenssl() {
  for (const char* path : {"/usr/bin/openssl", "/usr/local/bin/openssl", "/bin/openssl"}) {
    if (access(path, X_OK) == 0) return path;
  }
  return "";
}

class TlsEndToEnd : public EndToEndTest {
 protected:
  void SetUp() override {
    EndToEndTest::SetUp();
    if (HasFatalFailure()) return;
    openssl_ = FindOpenssl();
    if (openssl_.empty()) GTEST_SKIP() << "openssl not installed (Debian package 'openssl')";
    config_ = dir_.File("openssl.cnf");
    ASSERT_TRUE(WriteFile(config_, kOpensslConfig));
    MakeCa("ca");
    MakeCa("other-ca");
    MakeCert("server", "ca", "/CN=localhost");
    MakeCert("client", "ca", "/CN=srn-test-client");
    MakeCert("stranger", "other-ca", "/CN=srn-test-stranger");
  }

  void Openssl(std::vector<std::string> args) {
    args.insert(args.begin(), openssl_);
    ProcessResult r = RunProcess(args, CleanEnvironment());
    ASSERT_EQ(r.exit_code, 0) << args[1] << " failed:\n" << r.err;
  }

  // P-256 keys: fast to make, and every TLS stack takes them.
  void MakeCa(const std::string& name) {
    Openssl({"req",
             "-x509",
             "-new",
             "-newkey",
             "ec",
             "-pkeyopt",
             "ec_paramgen_curve:prime256v1",
             "-nodes",
             "-keyout",
             dir_.File(name + ".key"),
             "-out",
             dir_.File(name + ".pem"),
             "-days",
             "2",
             "-config",
             config_,
             "-extensions",
             "ca",
             "-subj",
             "/CN=" + name});
  }

  void MakeCert(const std::string& name, const std::string& ca, const std::string& subject) {
    Openssl({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", dir_.File(name + ".key"), "-out", dir_.File(name + ".csr"), "-config",
             config_, "-subj", subject});
    Openssl({"x509", "-req", "-in", dir_.File(name + ".csr"), "-CA", dir_.File(ca + ".pem"),
             "-CAkey", dir_.File(ca + ".key"), "-set_serial", absl::StrCat(++serial_), "-days", "2",
             "-out", dir_.File(name + ".pem"), "-extfile", config_, "-extensions",
             name == "server" ? "server" : "client"});
  }

  std::vector<std::string> ClientFlags(const std::string& cert) {
    return {absl::StrCat("--tls_ca=", dir_.File("ca.pem")),
            absl::StrCat("--tls_cert=", dir_.File(cert + ".pem")),
            absl::StrCat("--tls_key=", dir_.File(cert + ".key")), "--timeout=5"};
  }

  ProcessResult CtlWith(const std::string& server, std::vector<std::string> flags,
                        const std::vector<std::string>& args) {
    flags.insert(flags.begin(), absl::StrCat("--server=", server));
    flags.insert(flags.end(), args.begin(), args.end());
    return RunSrnctl(flags);
  }

  std::string openssl_, config_;
  int serial_ = 100;
};

TEST_F(TlsEndToEnd, MutualTls) {
  std::unique_ptr<ServerProcess> server =
      StartServer(":memory:", {absl::StrCat("--tls_cert=", dir_.File("server.pem")),
                               absl::StrCat("--tls_key=", dir_.File("server.key")),
                               absl::StrCat("--tls_client_ca=", dir_.File("ca.pem"))});
  ASSERT_NE(server, nullptr);
  const std::string by_ip = server->address();  // 127.0.0.1:port, in the certificate's SAN too
  const std::string by_name = absl::StrCat("localhost:", server->port());

  std::vector<std::string> good = ClientFlags("client");
  std::vector<std::string> health_flags = good;
  health_flags.push_back(absl::StrCat("--server=", by_name));
  ASSERT_TRUE(WaitUntilServing(health_flags, CleanEnvironment())) << server->Log();

  ProcessResult r = CtlWith(by_name, good, {"model-info"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("model_id: "));
  std::vector<std::string> named = good;
  named.push_back("--tls_server_name=localhost");
  r = CtlWith(by_ip, named, {"similarity", Svc(0), Svc(1)});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("similarity: "));

  // No client certificate: the handshake fails.
  r = CtlWith(by_name, {absl::StrCat("--tls_ca=", dir_.File("ca.pem")), "--timeout=5"},
              {"model-info"});
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.err, StartsWith("srnctl: "));
  // A client certificate from another CA.
  std::vector<std::string> stranger = ClientFlags("stranger");
  r = CtlWith(by_name, stranger, {"model-info"});
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.err, StartsWith("srnctl: "));
  // A server certificate the client cannot verify (the client trusts only the other CA).
  r = CtlWith(by_name, {absl::StrCat("--tls_ca=", dir_.File("other-ca.pem")),
                        absl::StrCat("--tls_cert=", dir_.File("client.pem")),
                        absl::StrCat("--tls_key=", dir_.File("client.key")), "--timeout=5"},
              {"model-info"});
  EXPECT_NE(r.exit_code, 0) << r.out;
  // A name the certificate does not carry.
  std::vector<std::string> misnamed = good;
  misnamed.push_back("--tls_server_name=example.com");
  r = CtlWith(by_ip, misnamed, {"model-info"});
  EXPECT_NE(r.exit_code, 0) << r.out;
  // Plaintext against a TLS server.
  r = CtlWith(by_name, {"--timeout=5"}, {"model-info"});
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.err, StartsWith("srnctl: UNAVAILABLE: "));
  // A certificate without its key is a usage error.
  r = CtlWith(by_name, {absl::StrCat("--tls_cert=", dir_.File("client.pem"))}, {"model-info"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
}

TEST_F(TlsEndToEnd, ServerOnlyTls) {
  std::unique_ptr<ServerProcess> server =
      StartServer(":memory:", {absl::StrCat("--tls_cert=", dir_.File("server.pem")),
                               absl::StrCat("--tls_key=", dir_.File("server.key"))});
  ASSERT_NE(server, nullptr);
  const std::vector<std::string> ca_only = {absl::StrCat("--tls_ca=", dir_.File("ca.pem")),
                                            "--timeout=5"};
  std::vector<std::string> health_flags = ca_only;
  health_flags.push_back(absl::StrCat("--server=localhost:", server->port()));
  ASSERT_TRUE(WaitUntilServing(health_flags, CleanEnvironment())) << server->Log();
  ProcessResult r = CtlWith(absl::StrCat("localhost:", server->port()), ca_only, {"model-info"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = CtlWith(absl::StrCat("localhost:", server->port()), {"--timeout=5"}, {"model-info"});
  EXPECT_NE(r.exit_code, 0) << r.out;
}

}  // namespace
}  // namespace srn::testing
