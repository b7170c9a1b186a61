#include "pkcs11/file_signer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "ssh/writer.h"

namespace touchgate::pkcs11 {
namespace {

constexpr size_t kMaxKeyFile = 64 * 1024;

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
struct BnFree {
  void operator()(BIGNUM* p) const { BN_free(p); }
};
struct EcdsaSigFree {
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
};

// Refuses to ask for a passphrase: an encrypted key makes PEM_read fail.
int no_passphrase(char*, int, int, void*) {
  return -1;
}

// read_key_file reads path (checked as the header says) into a buffer wiped by the caller.
Result<std::string> read_key_file(const std::filesystem::path& path) {
  const std::string name = path.string();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0)
    return fail("ca_key_file",
                fmt::format("CA key file {}: cannot open: {}", name, std::strerror(errno)));
  struct stat st {};
  std::string text;
  const bool stat_ok = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  if (stat_ok && (st.st_mode & 077) == 0 && st.st_size <= static_cast<off_t>(kMaxKeyFile)) {
    text.resize(static_cast<size_t>(st.st_size));
    size_t got = 0;
    while (got < text.size()) {
      const ssize_t n = ::read(fd, text.data() + got, text.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    text.resize(got);
  }
  ::close(fd);
  if (!stat_ok) return fail("ca_key_file", fmt::format("CA key file {}: not a regular file", name));
  if ((st.st_mode & 077) != 0)
    return fail("ca_key_file_mode",
                fmt::format("CA key file {}: mode {:04o} lets group or others access it; "
                            "chmod 600 it",
                            name, st.st_mode & 07777));
  if (st.st_size > static_cast<off_t>(kMaxKeyFile))
    return fail("ca_key_file",
                fmt::format("CA key file {}: larger than {} bytes", name, kMaxKeyFile));
  return text;
}

std::vector<uint8_t> bn_bytes(const BIGNUM* bn) {
  std::vector<uint8_t> out(static_cast<size_t>(BN_num_bytes(bn)));
  BN_bn2bin(bn, out.data());
  return out;
}

// ssh_public_key builds and checks the SSH public key of pkey.
Result<ssh::PublicKey> ssh_public_key(EVP_PKEY* pkey, const std::string& name) {
  ssh::Writer w;
  switch (EVP_PKEY_get_base_id(pkey)) {
    case EVP_PKEY_ED25519: {
      std::vector<uint8_t> raw(32);
      size_t len = raw.size();
      if (EVP_PKEY_get_raw_public_key(pkey, raw.data(), &len) != 1 || len != raw.size())
        return fail("ca_key_file", fmt::format("CA key file {}: unreadable Ed25519 key", name));
      w.string("ssh-ed25519").string(raw);
      break;
    }
    case EVP_PKEY_EC: {
      char group[64] = {};
      if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                         nullptr) != 1)
        return fail("ca_key_unsupported", fmt::format("CA key file {}: unnamed curve", name));
      const std::string_view g(group);
      const std::string_view curve = g == "prime256v1"  ? "nistp256"
                                     : g == "secp384r1" ? "nistp384"
                                     : g == "secp521r1" ? "nistp521"
                                                        : "";
      if (curve.empty())
        return fail("ca_key_unsupported",
                    fmt::format("CA key file {}: curve {} is not P-256, P-384 or P-521", name, g));
      EVP_PKEY_set_utf8_string_param(pkey, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                     "uncompressed");
      std::vector<uint8_t> point(200);
      size_t len = 0;
      if (EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point.data(),
                                          point.size(), &len) != 1)
        return fail("ca_key_file", fmt::format("CA key file {}: unreadable EC point", name));
      point.resize(len);
      w.string(fmt::format("ecdsa-sha2-{}", curve)).string(curve).string(point);
      break;
    }
    case EVP_PKEY_RSA: {
      BIGNUM* n_raw = nullptr;
      BIGNUM* e_raw = nullptr;
      EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n_raw);
      EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e_raw);
      std::unique_ptr<BIGNUM, BnFree> n(n_raw);
      std::unique_ptr<BIGNUM, BnFree> e(e_raw);
      if (!n || !e)
        return fail("ca_key_file", fmt::format("CA key file {}: unreadable RSA key", name));
      w.string("ssh-rsa").mpint(bn_bytes(e.get())).mpint(bn_bytes(n.get()));
      break;
    }
    default:
      return fail("ca_key_unsupported",
                  fmt::format("CA key file {}: not an ECDSA, Ed25519 or RSA key", name));
  }
  auto key = ssh::parse_public_key(w.bytes());
  if (!key)
    return fail("ca_key_unsupported", fmt::format("CA key file {}: {}", name, key.error().message));
  return key;
}

}  // namespace

struct FileSigner::Key {
  std::unique_ptr<EVP_PKEY, PkeyFree> pkey;
};

FileSigner::~FileSigner() = default;

Result<std::unique_ptr<FileSigner>> FileSigner::open(const std::filesystem::path& path) {
  const std::string name = path.string();
  auto text = read_key_file(path);
  if (!text) return tl::unexpected(text.error());
  const bool openssh = text->find("BEGIN OPENSSH PRIVATE KEY") != std::string::npos;
  const bool encrypted = text->find("ENCRYPTED") != std::string::npos;
  std::unique_ptr<EVP_PKEY, PkeyFree> pkey;
  {
    std::unique_ptr<BIO, BioFree> bio(
        BIO_new_mem_buf(text->data(), static_cast<int>(text->size())));
    if (bio) pkey.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
  }
  OPENSSL_cleanse(text->data(), text->size());
  if (!pkey) {
    if (openssh)
      return fail("ca_key_file",
                  fmt::format("CA key file {}: OpenSSH format; convert it to PEM with "
                              "ssh-keygen -p -m PEM",
                              name));
    if (encrypted)
      return fail("ca_key_file",
                  fmt::format("CA key file {}: encrypted keys are not supported", name));
    return fail("ca_key_file", fmt::format("CA key file {}: not a PEM private key", name));
  }
  auto public_key = ssh_public_key(pkey.get(), name);
  if (!public_key) return tl::unexpected(public_key.error());
  std::unique_ptr<FileSigner> signer(new FileSigner());
  signer->path_ = path;
  signer->key_ = std::make_unique<Key>(Key{std::move(pkey)});
  signer->public_key_ = std::move(*public_key);
  return signer;
}

Result<std::vector<uint8_t>> FileSigner::sign(std::span<const uint8_t> data) {
  const EVP_MD* md = nullptr;
  std::string_view algorithm;
  switch (public_key_.type) {
    case ssh::KeyType::kEd25519:
      algorithm = "ssh-ed25519";
      break;
    case ssh::KeyType::kEcdsaP256:
      md = EVP_sha256();
      algorithm = public_key_.type_name();
      break;
    case ssh::KeyType::kEcdsaP384:
      md = EVP_sha384();
      algorithm = public_key_.type_name();
      break;
    case ssh::KeyType::kEcdsaP521:
      md = EVP_sha512();
      algorithm = public_key_.type_name();
      break;
    case ssh::KeyType::kRsa:
      md = EVP_sha512();
      algorithm = "rsa-sha2-512";
      break;
    default:
      return fail("ca_sign_failed", "key type cannot sign");
  }
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  size_t len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, key_->pkey.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, data.data(), data.size()) != 1)
    return fail("ca_sign_failed", fmt::format("{}: cannot sign", path_.string()));
  std::vector<uint8_t> sig(len);
  if (EVP_DigestSign(ctx.get(), sig.data(), &len, data.data(), data.size()) != 1)
    return fail("ca_sign_failed", fmt::format("{}: cannot sign", path_.string()));
  sig.resize(len);

  ssh::Writer blob;
  blob.string(algorithm);
  if (public_key_.type == ssh::KeyType::kEcdsaP256 ||
      public_key_.type == ssh::KeyType::kEcdsaP384 ||
      public_key_.type == ssh::KeyType::kEcdsaP521) {
    const unsigned char* p = sig.data();
    std::unique_ptr<ECDSA_SIG, EcdsaSigFree> ecdsa(
        d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size())));
    if (!ecdsa) return fail("ca_sign_failed", "OpenSSL returned a malformed ECDSA signature");
    ssh::Writer rs;
    rs.mpint(bn_bytes(ECDSA_SIG_get0_r(ecdsa.get())))
        .mpint(bn_bytes(ECDSA_SIG_get0_s(ecdsa.get())));
    blob.string(rs.bytes());
  } else {
    blob.string(sig);
  }
  return blob.take();
}

std::string FileSigner::describe() const {
  return fmt::format("{} {}", path_.string(), public_key_.fingerprint());
}

}  // namespace touchgate::pkcs11
