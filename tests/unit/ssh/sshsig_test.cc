#include "ssh/sshsig.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "ssh/digest.h"
#include "ssh/key.h"
#include "ssh/signature.h"
#include "ssh/writer.h"

// .sig files in tests/data/touch/ were written by ssh-keygen -Y sign (generate.sh); agent_*.sig
// were assembled from a real ssh-agent's signatures and accepted by ssh-keygen -Y verify.
namespace touchgate::ssh {
namespace {

const std::string kNamespace = "touchgate-mfa@test";

std::string read_text(const std::string& name) {
  std::ifstream in(std::string(TOUCHGATE_TEST_DATA) + "/touch/" + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<uint8_t> message() {
  std::string s = read_text("message.txt");
  return {s.begin(), s.end()};
}

std::vector<uint8_t> pub_blob(const std::string& name) {
  auto line = parse_key_line(read_text(name + ".pub"));
  EXPECT_TRUE(line.has_value()) << name;
  return line ? line->blob : std::vector<uint8_t>{};
}

template <class T>
std::string code_of(const Result<T>& r) {
  return r ? "ok" : r.error().code;
}

struct SigFile {
  const char* file;
  const char* key;
  SshsigHash hash;
  const char* algorithm;
};

const SigFile kFiles[] = {
    {"ed25519.sig", "ed25519", SshsigHash::kSha512, "ssh-ed25519"},
    {"ed25519_sha256.sig", "ed25519", SshsigHash::kSha256, "ssh-ed25519"},
    {"ecdsa256.sig", "ecdsa256", SshsigHash::kSha512, "ecdsa-sha2-nistp256"},
    {"ecdsa384.sig", "ecdsa384", SshsigHash::kSha512, "ecdsa-sha2-nistp384"},
    {"ecdsa521.sig", "ecdsa521", SshsigHash::kSha512, "ecdsa-sha2-nistp521"},
    {"rsa.sig", "rsa", SshsigHash::kSha512, "rsa-sha2-512"},
    {"sk_ecdsa.sig", "sk_ecdsa", SshsigHash::kSha512, "sk-ecdsa-sha2-nistp256@openssh.com"},
    {"sk_ecdsa_sha256.sig", "sk_ecdsa", SshsigHash::kSha256, "sk-ecdsa-sha2-nistp256@openssh.com"},
    {"sk_ed25519.sig", "sk_ed25519", SshsigHash::kSha512, "sk-ssh-ed25519@openssh.com"},
    {"sk_ecdsa_notouch.sig", "sk_ecdsa_notouch", SshsigHash::kSha512,
     "sk-ecdsa-sha2-nistp256@openssh.com"},
    {"sk_ed25519_notouch.sig", "sk_ed25519_notouch", SshsigHash::kSha512,
     "sk-ssh-ed25519@openssh.com"},
    {"agent_ed25519.sig", "ed25519", SshsigHash::kSha512, "ssh-ed25519"},
    {"agent_rsa.sig", "rsa", SshsigHash::kSha512, "rsa-sha2-512"},
    {"agent_rsa_sha256.sig", "rsa", SshsigHash::kSha512, "rsa-sha2-256"},
    {"agent_sk_ecdsa.sig", "sk_ecdsa", SshsigHash::kSha512, "sk-ecdsa-sha2-nistp256@openssh.com"},
};

Sshsig load(const std::string& file) {
  auto blob = dearmor_sshsig(read_text(file));
  EXPECT_TRUE(blob.has_value()) << file;
  auto sig = parse_sshsig(blob.value_or(std::vector<uint8_t>{}));
  EXPECT_TRUE(sig.has_value()) << file << ": " << (sig ? "" : sig.error().message);
  return sig.value_or(Sshsig{});
}

// A valid blob built by hand, for the refusal tests.
std::vector<uint8_t> blob_with(std::string_view magic, uint32_t version, Bytes key,
                               std::string_view ns, std::string_view reserved,
                               std::string_view hash, Bytes sig) {
  return Writer()
      .raw(magic)
      .u32(version)
      .string(key)
      .string(ns)
      .string(reserved)
      .string(hash)
      .string(sig)
      .take();
}

const std::vector<uint8_t> kKey = {0, 0, 0, 1, 'k'};
const std::vector<uint8_t> kSig = {0, 0, 0, 1, 's'};

// ---- Files written by ssh-keygen ----

TEST(SshsigTest, ParsesSshKeygenSignatures) {
  for (const auto& f : kFiles) {
    SCOPED_TRACE(f.file);
    const Sshsig sig = load(f.file);
    EXPECT_EQ(sig.public_key, pub_blob(f.key));
    EXPECT_EQ(sig.ns, kNamespace);
    EXPECT_EQ(sig.hash, f.hash);
    EXPECT_EQ(signature_algorithm(sig.signature), f.algorithm);
  }
}

TEST(SshsigTest, ReencodesSshKeygenFilesByteForByte) {
  for (const auto& f : kFiles) {
    SCOPED_TRACE(f.file);
    const std::string text = read_text(f.file);
    const Sshsig sig = load(f.file);
    const auto blob = encode_sshsig(sig.public_key, sig.ns, sig.hash, sig.signature);
    EXPECT_EQ(blob, dearmor_sshsig(text).value_or(std::vector<uint8_t>{}));
    EXPECT_EQ(armor_sshsig(blob), text);
  }
}

TEST(SshsigTest, SignedDataIsWhatSshKeygenSigned) {
  // Plain keys verify with OpenSSL over sshsig_signed_data: the bytes match ssh-keygen's.
  for (const auto& f : kFiles) {
    if (std::string_view(f.key).rfind("sk_", 0) == 0) continue;  // sk: see touch_test
    SCOPED_TRACE(f.file);
    const Sshsig sig = load(f.file);
    auto key = parse_public_key(sig.public_key);
    ASSERT_TRUE(key.has_value());
    const auto data = sshsig_signed_data(sig.ns, sig.hash, message());
    EXPECT_TRUE(verify_signature(*key, sig.signature, data).has_value());
    const auto other_ns = sshsig_signed_data("file", sig.hash, message());
    EXPECT_EQ(code_of(verify_signature(*key, sig.signature, other_ns)), "sig_invalid");
  }
}

TEST(SshsigTest, SignedDataLayout) {
  const std::vector<uint8_t> msg = {'a', 'b', 'c'};
  const auto data = sshsig_signed_data("ns", SshsigHash::kSha256, msg);
  // "SSHSIG" || string "ns" || string "" || string "sha256" || string SHA256("abc")
  const std::string head = std::string("SSHSIG") + std::string("\0\0\0\2ns", 6) +
                           std::string("\0\0\0\0", 4) + std::string("\0\0\0\6sha256", 10) +
                           std::string("\0\0\0\x20", 4);
  ASSERT_EQ(data.size(), head.size() + 32);
  EXPECT_EQ(std::string(data.begin(), data.begin() + head.size()), head);
  // SHA-256("abc") (FIPS 180-2 test vector) starts ba7816bf.
  EXPECT_EQ(data[head.size()], 0xba);
  EXPECT_EQ(data[head.size() + 1], 0x78);
  EXPECT_EQ(data.back(), 0xad);

  const auto data512 = sshsig_signed_data("ns", SshsigHash::kSha512, msg);
  EXPECT_EQ(data512.size(), 6 + 6 + 4 + 10 + 4 + 64u);
  EXPECT_EQ(data512[6 + 6 + 4 + 10 + 4], 0xdd);  // SHA-512("abc") starts ddaf35a1
}

// ---- Armour ----

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    const size_t nl = text.find('\n', start);
    out.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

TEST(SshsigArmorTest, WrapsAtSeventyColumnsLikeSshKeygen) {
  const std::vector<uint8_t> full(105, 0xab);  // 140 base64 characters: exactly two lines
  const std::string text = armor_sshsig(full);
  auto lines = lines_of(text);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0], "-----BEGIN SSH SIGNATURE-----");
  EXPECT_EQ(lines[1].size(), 70u);
  EXPECT_EQ(lines[2].size(), 70u);
  EXPECT_EQ(lines[3], "-----END SSH SIGNATURE-----");
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(dearmor_sshsig(text).value_or(std::vector<uint8_t>{}), full);

  const std::vector<uint8_t> more(106, 0xab);
  lines = lines_of(armor_sshsig(more));
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[3], "qw==");

  EXPECT_EQ(armor_sshsig(std::vector<uint8_t>{}),
            "-----BEGIN SSH SIGNATURE-----\n-----END SSH SIGNATURE-----\n");
  EXPECT_EQ(armor_sshsig(std::vector<uint8_t>{0}),
            "-----BEGIN SSH SIGNATURE-----\nAA==\n-----END SSH SIGNATURE-----\n");
}

TEST(SshsigArmorTest, AcceptsOtherWrappingAndLineEnds) {
  const std::string text = read_text("ed25519.sig");
  const auto blob = dearmor_sshsig(text).value_or(std::vector<uint8_t>{});
  ASSERT_FALSE(blob.empty());
  const std::string b64 = base64_encode(blob);
  auto rewrap = [&](size_t width, std::string_view eol) {
    std::string out = "-----BEGIN SSH SIGNATURE-----" + std::string(eol);
    for (size_t i = 0; i < b64.size(); i += width) out += b64.substr(i, width) + std::string(eol);
    return out + "-----END SSH SIGNATURE-----" + std::string(eol);
  };
  EXPECT_EQ(dearmor_sshsig(rewrap(76, "\n")).value_or(std::vector<uint8_t>{}), blob);
  EXPECT_EQ(dearmor_sshsig(rewrap(64, "\r\n")).value_or(std::vector<uint8_t>{}), blob);
  EXPECT_EQ(dearmor_sshsig(rewrap(b64.size(), "\n")).value_or(std::vector<uint8_t>{}), blob);
  // No newline after END, or empty lines after it.
  EXPECT_EQ(dearmor_sshsig(text.substr(0, text.size() - 1)).value_or(std::vector<uint8_t>{}), blob);
  EXPECT_EQ(dearmor_sshsig(text + "\n\n").value_or(std::vector<uint8_t>{}), blob);
}

TEST(SshsigArmorTest, Refusals) {
  const std::string text = read_text("ed25519.sig");
  const std::string begin = "-----BEGIN SSH SIGNATURE-----\n";
  const std::string end = "-----END SSH SIGNATURE-----\n";
  const std::string b64 = text.substr(begin.size(), text.size() - begin.size() - end.size());
  EXPECT_EQ(code_of(dearmor_sshsig("")), "sshsig_malformed");
  EXPECT_EQ(code_of(dearmor_sshsig(" " + text)), "sshsig_malformed");
  EXPECT_EQ(code_of(dearmor_sshsig("x\n" + text)), "sshsig_malformed");
  EXPECT_EQ(code_of(dearmor_sshsig(begin + b64)), "sshsig_malformed");  // no END
  EXPECT_EQ(code_of(dearmor_sshsig(text + "more\n")), "sshsig_malformed");
  EXPECT_EQ(code_of(dearmor_sshsig(begin + end)), "sshsig_malformed");  // nothing inside
  EXPECT_EQ(code_of(dearmor_sshsig(begin + "U1NI SUc=\n" + end)), "sshsig_malformed");
  EXPECT_EQ(code_of(dearmor_sshsig(begin + "U1NIU0l\n" + end)), "sshsig_malformed");  // length
  EXPECT_EQ(code_of(dearmor_sshsig(begin + "U1NIU0l*\n" + end)), "sshsig_malformed");
  EXPECT_EQ(code_of(dearmor_sshsig("-----BEGIN SSH SIGNATURE----- \n" + b64 + end)),
            "sshsig_malformed");

  // The cap counts the whole text: a valid armour padded with blank lines past it is refused.
  std::string padded = text + std::string(kMaxSshsigArmor - text.size(), '\n');
  EXPECT_TRUE(dearmor_sshsig(padded).has_value());
  padded.push_back('\n');
  EXPECT_EQ(code_of(dearmor_sshsig(padded)), "sshsig_malformed");
}

// ---- Binary blob refusals ----

TEST(SshsigTest, ParsesAHandBuiltBlob) {
  auto sig = parse_sshsig(blob_with("SSHSIG", 1, kKey, "n", "", "sha256", kSig));
  ASSERT_TRUE(sig.has_value()) << sig.error().message;
  EXPECT_EQ(sig->public_key, kKey);
  EXPECT_EQ(sig->ns, "n");
  EXPECT_EQ(sig->hash, SshsigHash::kSha256);
  EXPECT_EQ(sig->signature, kSig);
}

TEST(SshsigTest, BlobRefusals) {
  const std::vector<uint8_t> none;
  auto refused = [](const std::vector<uint8_t>& blob) {
    return code_of(parse_sshsig(blob)) == "sshsig_malformed";
  };
  EXPECT_TRUE(refused(blob_with("SSHSIH", 1, kKey, "n", "", "sha512", kSig)));
  EXPECT_TRUE(refused(blob_with("SSHSIG", 0, kKey, "n", "", "sha512", kSig)));
  EXPECT_TRUE(refused(blob_with("SSHSIG", 2, kKey, "n", "", "sha512", kSig)));
  EXPECT_TRUE(refused(blob_with("SSHSIG", 1, none, "n", "", "sha512", kSig)));
  EXPECT_TRUE(refused(blob_with("SSHSIG", 1, kKey, "", "", "sha512", kSig)));
  EXPECT_TRUE(
      refused(blob_with("SSHSIG", 1, kKey, std::string_view("a\0b", 3), "", "sha512", kSig)));
  EXPECT_TRUE(refused(blob_with("SSHSIG", 1, kKey, "n", "r", "sha512", kSig)));
  EXPECT_TRUE(refused(blob_with("SSHSIG", 1, kKey, "n", "", "sha1", kSig)));
  EXPECT_TRUE(refused(blob_with("SSHSIG", 1, kKey, "n", "", "SHA512", kSig)));
  EXPECT_TRUE(refused(blob_with("SSHSIG", 1, kKey, "n", "", "sha512", none)));

  const std::vector<uint8_t> big_key(kMaxSshsigKey + 1, 1);
  EXPECT_TRUE(refused(blob_with("SSHSIG", 1, big_key, "n", "", "sha512", kSig)));
  const std::vector<uint8_t> max_key(kMaxSshsigKey, 1);
  EXPECT_FALSE(refused(blob_with("SSHSIG", 1, max_key, "n", "", "sha512", kSig)));
  const std::string big_ns(kMaxSshsigNamespace + 1, 'n');
  EXPECT_TRUE(refused(blob_with("SSHSIG", 1, kKey, big_ns, "", "sha512", kSig)));
  const std::vector<uint8_t> big_sig(kMaxSshsigSignature + 1, 1);
  EXPECT_TRUE(refused(blob_with("SSHSIG", 1, kKey, "n", "", "sha512", big_sig)));

  const auto real = dearmor_sshsig(read_text("sk_ecdsa.sig")).value_or(std::vector<uint8_t>{});
  ASSERT_FALSE(real.empty());
  for (size_t len = 0; len < real.size(); ++len) {
    EXPECT_TRUE(refused(std::vector<uint8_t>(real.begin(), real.begin() + len))) << len;
  }
  auto longer = real;
  longer.push_back(0);
  EXPECT_TRUE(refused(longer));
}

}  // namespace
}  // namespace touchgate::ssh
