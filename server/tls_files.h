#ifndef SRN_SERVER_TLS_FILES_H_
#define SRN_SERVER_TLS_FILES_H_

#include <string>

#include "absl/status/status.h"

namespace srn {

// The server's TLS material as read from its files (PEM), with the paths it came from for errors.
struct TlsFiles {
  std::string cert_path, cert_pem;  // the server's certificate chain, its own certificate first
  std::string key_path, key_pem;    // the private key of that certificate
  std::string client_ca_path, client_ca_pem;  // empty: clients are not asked for certificates
};

// Checks, before the server listens, what gRPC would otherwise report only as "cannot listen" or
// not at all: the certificate and the key parse as PEM (an encrypted key is refused: the server
// cannot ask for a passphrase), the key belongs to the certificate, the certificate is valid now
// (not expired, not yet valid), and the client CA file holds at least one certificate.
// InvalidArgument naming the file and what to do.
absl::Status CheckTlsFiles(const TlsFiles& files);

}  // namespace srn

#endif  // SRN_SERVER_TLS_FILES_H_
