// FileSigner over keys made by ssh-keygen and openssl; open_ca_signer's configuration checks.
#include "pkcs11/file_signer.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "pkcs11/open.h"
#include "ssh/key.h"
#include "ssh/signature.h"
#include "tests/unit/pkcs11/softhsm.h"

namespace touchgate::pkcs11 {
namespace {

using testing::run;

const std::vector<uint8_t> kMessage = {'c', 'e', 'r', 't'};

class FileSignerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir_template[] = "/tmp/tg-file-signer-XXXXXX";
    ASSERT_TRUE(::mkdtemp(dir_template));
    dir_ = dir_template;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // make runs a key-generating command; the key ends up mode 0600.
  std::filesystem::path make(const std::string& name, const std::string& command) {
    const auto path = dir_ / name;
    EXPECT_TRUE(run(command + " " + path.string(), dir_ / "tools.log")) << command;
    ::chmod(path.c_str(), 0600);
    return path;
  }
  std::filesystem::path ssh_keygen(const std::string& name, const std::string& args) {
    return make(name, "ssh-keygen -q -N '' -C '' " + args + " -f");
  }

  // expect_signs opens path and checks a signature with ssh/signature.h; returns the key.
  ssh::PublicKey expect_signs(const std::filesystem::path& path, std::string_view key_type,
                              std::string_view algorithm) {
    auto signer = FileSigner::open(path);
    EXPECT_TRUE(signer) << path << ": " << (signer ? "" : signer.error().message);
    if (!signer) return {};
    auto key = ssh::parse_public_key((*signer)->public_key());
    EXPECT_TRUE(key);
    if (!key) return {};
    EXPECT_EQ(key->type_name(), key_type);
    auto sig = (*signer)->sign(kMessage);
    EXPECT_TRUE(sig) << (sig ? "" : sig.error().message);
    if (!sig) return {};
    EXPECT_EQ(ssh::signature_algorithm(*sig), algorithm);
    EXPECT_TRUE(ssh::verify_signature(*key, *sig, kMessage));
    std::vector<uint8_t> other = kMessage;
    other[0] ^= 1;
    EXPECT_FALSE(ssh::verify_signature(*key, *sig, other));
    EXPECT_EQ((*signer)->describe(), path.string() + " " + key->fingerprint());
    return *key;
  }

  // expect_same_as_pub checks that key is the one in ssh-keygen's path.pub.
  void expect_same_as_pub(const std::filesystem::path& path, const ssh::PublicKey& key) {
    std::ifstream in(path.string() + ".pub");
    std::string line;
    std::getline(in, line);
    auto parsed = ssh::parse_key_line(line.substr(0, line.find_last_not_of(' ') + 1));
    ASSERT_TRUE(parsed) << line;
    EXPECT_EQ(parsed->blob, key.blob);
  }

  std::filesystem::path dir_;
};

TEST_F(FileSignerTest, SshKeygenPemKeys) {
  const struct {
    const char* args;
    const char* key_type;
    const char* algorithm;
  } cases[] = {
      {"-t ecdsa -b 256 -m PEM", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256"},
      {"-t ecdsa -b 384 -m PEM", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp384"},
      {"-t ecdsa -b 521 -m PEM", "ecdsa-sha2-nistp521", "ecdsa-sha2-nistp521"},
      {"-t rsa -b 2048 -m PEM", "ssh-rsa", "rsa-sha2-512"},
  };
  int n = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.args);
    const auto path = ssh_keygen("key" + std::to_string(n++), c.args);
    expect_same_as_pub(path, expect_signs(path, c.key_type, c.algorithm));
  }
}

TEST_F(FileSignerTest, OpensslPkcs8Keys) {
  expect_signs(make("ed25519.pem", "openssl genpkey -algorithm ed25519 -out"), "ssh-ed25519",
               "ssh-ed25519");
  expect_signs(make("p384.pem",
                    "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 "
                    "-out"),
               "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp384");
  expect_signs(make("rsa.pem",
                    "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 "
                    "-out"),
               "ssh-rsa", "rsa-sha2-512");
}

TEST_F(FileSignerTest, KeyFileReadableByOthersRefused) {
  const auto path = ssh_keygen("loose", "-t ecdsa -m PEM");
  ::chmod(path.c_str(), 0640);
  auto signer = FileSigner::open(path);
  ASSERT_FALSE(signer);
  EXPECT_EQ(signer.error().code, "ca_key_file_mode");
  EXPECT_NE(signer.error().message.find("0640"), std::string::npos);
}

TEST_F(FileSignerTest, UnusableFilesRefused) {
  const struct {
    std::filesystem::path path;
    const char* code;
    const char* in_message;
  } cases[] = {
      {ssh_keygen("openssh", "-t ed25519"), "ca_key_file", "OpenSSH format"},
      {make("encrypted", "ssh-keygen -q -N secret-passphrase -t ecdsa -m PEM -f"), "ca_key_file",
       "encrypted"},
      {make("pkcs8-encrypted",
            "openssl genpkey -algorithm ed25519 -aes256 -pass pass:secret "
            "-out"),
       "ca_key_file", "encrypted"},
      {make("k1", "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:secp256k1 -out"),
       "ca_key_unsupported", "secp256k1"},
      {make("rsa1024", "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out"),
       "ca_key_unsupported", "RSA"},
      {make("x448", "openssl genpkey -algorithm x448 -out"), "ca_key_unsupported", "not an"},
      {dir_ / "tools.log", "ca_key_file", "not a PEM private key"},
      {dir_ / "absent", "ca_key_file", "cannot open"},
      {dir_, "ca_key_file", "not a regular file"},
  };
  ::chmod((dir_ / "tools.log").c_str(), 0600);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.path.string());
    auto signer = FileSigner::open(c.path);
    ASSERT_FALSE(signer);
    EXPECT_EQ(signer.error().code, c.code);
    EXPECT_NE(signer.error().message.find(c.in_message), std::string::npos)
        << signer.error().message;
    EXPECT_EQ(signer.error().message.find("secret"), std::string::npos);
  }
}

TEST_F(FileSignerTest, OpenCaSignerWithKeyFile) {
  CaKeyConfig c;
  c.key_file = make("ed25519.pem", "openssl genpkey -algorithm ed25519 -out");
  auto signer = open_ca_signer(c);
  ASSERT_TRUE(signer) << signer.error().message;
  auto key = ssh::parse_public_key((*signer)->public_key());
  ASSERT_TRUE(key);
  auto sig = (*signer)->sign(kMessage);
  ASSERT_TRUE(sig);
  EXPECT_TRUE(ssh::verify_signature(*key, *sig, kMessage));
}

TEST(OpenCaSignerTest, ConfigurationRefusals) {
  const struct {
    CaKeyConfig config;
    const char* code;
    const char* in_message;
  } cases[] = {
      {{}, "ca_key_config", "neither"},
      {{"pkcs11:object=ca", "/m.so", "/pin", "/key.pem"}, "ca_key_config", "both"},
      {{"", "/m.so", "", "/key.pem"}, "ca_key_config", "module or PIN file"},
      {{"pkcs11:object=ca", "", "/pin", ""}, "ca_key_config", "no PKCS#11 module"},
      {{"pkcs11:object=ca?module-name=softhsm2", "", "/pin", ""}, "ca_key_config", "module-name"},
      {{"pkcs11:object=ca?module-path=/a.so", "/b.so", "/pin", ""}, "ca_key_config", "differ"},
      {{"pkcs11:object=ca", "/m.so", "", ""}, "ca_key_config", "no PIN file"},
      {{"pkcs11:object=ca?pin-source=%7C/bin/askpin", "/m.so", "", ""},
       "ca_key_config",
       "pin-source must name a file"},
      {{"pkcs11:object=ca?pin-source=file:/a", "/m.so", "/b", ""}, "ca_key_config", "differ"},
      {{"pkcs11:object=ca;x", "/m.so", "/pin", ""}, "pkcs11_bad_uri", "name=value"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.config.pkcs11_uri);
    auto signer = open_ca_signer(c.config);
    ASSERT_FALSE(signer);
    EXPECT_EQ(signer.error().code, c.code);
    EXPECT_NE(signer.error().message.find(c.in_message), std::string::npos)
        << signer.error().message;
  }
}

}  // namespace
}  // namespace touchgate::pkcs11
