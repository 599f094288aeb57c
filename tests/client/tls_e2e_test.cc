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

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;
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

  // Each rejected client gets the status of a failed handshake, and the server, still up, then
  // answers a correct client (so a crashed server cannot pass as "rejected").
  const auto expect_rejected = [&](const ProcessResult& rejected, const std::string& what) {
    SCOPED_TRACE(what);
    EXPECT_EQ(rejected.exit_code, 1) << rejected.out << rejected.err;
    // (gRPC may log the handshake's failure on a line before srnctl's own.)
    EXPECT_THAT(rejected.err, ContainsRegex("(^|\n)srnctl: UNAVAILABLE: "));
    const ProcessResult after = CtlWith(by_name, good, {"model-info"});
    EXPECT_EQ(after.exit_code, 0) << after.err << server->Log();
  };
  expect_rejected(
      CtlWith(by_name, {absl::StrCat("--tls_ca=", dir_.File("ca.pem")), "--timeout=5"},
              {"model-info"}),
      "no client certificate");
  expect_rejected(CtlWith(by_name, ClientFlags("stranger"), {"model-info"}),
                  "a client certificate from another CA");
  expect_rejected(
      CtlWith(by_name,
              {absl::StrCat("--tls_ca=", dir_.File("other-ca.pem")),
               absl::StrCat("--tls_cert=", dir_.File("client.pem")),
               absl::StrCat("--tls_key=", dir_.File("client.key")), "--timeout=5"},
              {"model-info"}),
      "a server certificate the client cannot verify");
  std::vector<std::string> misnamed = good;
  misnamed.push_back("--tls_server_name=example.com");
  expect_rejected(CtlWith(by_ip, misnamed, {"model-info"}), "a name the certificate lacks");
  expect_rejected(CtlWith(by_name, {"--timeout=5"}, {"model-info"}), "plaintext");
  // A certificate without its key is a usage error, before any connection.
  r = CtlWith(by_name, {absl::StrCat("--tls_cert=", dir_.File("client.pem"))}, {"model-info"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
}

// srn-server refuses to start, naming the file and what is wrong, when it was asked for TLS it
// cannot give; it never listens without it.
TEST_F(TlsEndToEnd, StartUpRefusesTlsFilesItCannotServeWith) {
  // An expired certificate for the server's own key, and the key encrypted with a passphrase.
  Openssl({"x509", "-req", "-in", dir_.File("server.csr"), "-CA", dir_.File("ca.pem"), "-CAkey",
           dir_.File("ca.key"), "-set_serial", "999", "-days", "-1", "-out",
           dir_.File("expired.pem"), "-extfile", config_, "-extensions", "server"});
  Openssl({"pkey", "-in", dir_.File("server.key"), "-aes128", "-passout", "pass:secret", "-out",
           dir_.File("encrypted.key")});
  struct Case {
    std::string what, cert, key, client_ca, expected;
  };
  const std::string cert = dir_.File("server.pem"), key = dir_.File("server.key");
  const std::vector<Case> cases = {
      {"missing certificate", dir_.File("none.pem"), key, "", "no such file"},
      {"key is a directory", cert, dir_.path(), "", "not a regular file"},
      {"key of another certificate", cert, dir_.File("client.key"), "",
       "is not the key of the certificate in"},
      {"certificate and key swapped", key, cert, "", "holds no PEM certificate"},
      {"encrypted key", cert, dir_.File("encrypted.key"), "", "protected by a passphrase"},
      {"expired certificate", dir_.File("expired.pem"), key, "", "expired on"},
      {"missing client CA", cert, key, dir_.File("none-ca.pem"), "no such file"},
      {"client CA that is a key", cert, key, dir_.File("ca.key"),
       "--tls_client_ca " + dir_.File("ca.key") + " holds no PEM certificate"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    std::vector<std::string> argv = {SRN_SERVER_BINARY, "--store=:memory:",
                                     "--listen=127.0.0.1:0", "--metrics_listen=127.0.0.1:0",
                                     "--tls_cert=" + c.cert, "--tls_key=" + c.key};
    if (!c.client_ca.empty()) argv.push_back("--tls_client_ca=" + c.client_ca);
    const ProcessResult r = RunProcess(argv, CleanEnvironment(), /*timeout_seconds=*/15);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.expected));
    EXPECT_THAT(r.err, StartsWith("srn-server: "));
    EXPECT_THAT(r.err, Not(HasSubstr("on port")));  // never served
  }
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
