#include "server/tls_files.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>

#include "absl/strings/str_cat.h"

namespace srn {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Bio = std::unique_ptr<BIO, BioFree>;
using Cert = std::unique_ptr<X509, X509Free>;
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;

Bio MemoryBio(const std::string& pem) {
  return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// Refuses a passphrase prompt: the key must be usable without one.
int NoPassphrase(char*, int, int, void*) { return -1; }

std::string Time(const ASN1_TIME* t) {
  Bio out(BIO_new(BIO_s_mem()));
  if (out == nullptr || ASN1_TIME_print(out.get(), t) != 1) return "?";
  char* data = nullptr;
  const long size = BIO_get_mem_data(out.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

}  // namespace

absl::Status CheckTlsFiles(const TlsFiles& files) {
  Bio cert_bio = MemoryBio(files.cert_pem);
  Cert cert(PEM_read_bio_X509(cert_bio.get(), nullptr, NoPassphrase, nullptr));
  ERR_clear_error();
  if (cert == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--tls_cert ", files.cert_path,
        " holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\"); is it the key file?"));
  }
  Bio key_bio = MemoryBio(files.key_pem);
  Key key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, NoPassphrase, nullptr));
  ERR_clear_error();
  if (key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--tls_key ", files.key_path,
        " holds no unencrypted PEM private key (\"-----BEGIN PRIVATE KEY-----\"); is it the "
        "certificate file, or protected by a passphrase (remove it: openssl pkey -in KEY -out "
        "KEY.plain)?"));
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat("--tls_key ", files.key_path, " is not the key of the certificate in ",
                     files.cert_path, ": give the key that was made with that certificate"));
  }
  if (X509_cmp_current_time(X509_get0_notAfter(cert.get())) <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("the certificate in ", files.cert_path, " expired on ",
                     Time(X509_get0_notAfter(cert.get())), ": renew it (docs/DEPLOY.md)"));
  }
  if (X509_cmp_current_time(X509_get0_notBefore(cert.get())) >= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("the certificate in ", files.cert_path, " is not valid before ",
                     Time(X509_get0_notBefore(cert.get())), " (is this machine's clock right?)"));
  }
  if (!files.client_ca_path.empty()) {
    Bio ca_bio = MemoryBio(files.client_ca_pem);
    Cert ca(PEM_read_bio_X509(ca_bio.get(), nullptr, NoPassphrase, nullptr));
    ERR_clear_error();
    if (ca == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("--tls_client_ca ", files.client_ca_path,
                       " holds no PEM certificate: give the CA that signs the clients' "
                       "certificates"));
    }
  }
  return absl::OkStatus();
}

}  // namespace srn
