// The audit key in a PKCS#11 token (a SoftHSM2 token, keys made by pkcs11-tool), configured as
// [audit] pkcs11_uri: the configuration's checks, checkpoints the token signs that verify and
// that stock ssh-keygen accepts, a start without the token refused, and a token that goes away
// and comes back while records go on being written.
#include <dlfcn.h>

#include <filesystem>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "audit/log.h"
#include "audit/verify.h"
#include "gateway/config_bridge.h"
#include "policy/config.h"
#include "tests/unit/audit/audit_test_util.h"
#include "tests/unit/pkcs11/softhsm.h"

// SoftHSM2 2.6.1 leaks a small ASN.1 string on every CKM_EDDSA signature (not ours to fix); see
// tests/unit/pkcs11/token_signer_test.cc.
extern "C" const char* __lsan_default_suppressions() {
  return "leak:libsofthsm2.so\n";
}
extern "C" const char* __asan_default_options() {
  return "fast_unwind_on_malloc=0";
}

namespace touchgate::audit {
namespace {

using pkcs11::testing::kSoftHsmModule;
using pkcs11::testing::SoftHsm;
using testing::append_wait;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using testing::TempDir;

namespace fs = std::filesystem;

constexpr const char* kHead = R"([server]
listen = ["127.0.0.1:2222"]
[trust]
user_ca_keys = ["ca.pub"]
)";  // 4 lines: [audit] is line 5, its first key line 6

std::string findings_text(const VerifyReport& r) {
  std::string out;
  for (const auto& f : r.findings)
    out += f.kind + " seq " + std::to_string(f.seq) + ": " + f.message + "\n";
  return out;
}

class TokenKeyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    hsm_ = new SoftHsm();
    // Held until the process exits: the module stays mapped between the logs that load and
    // unload it, and when LeakSanitizer reports.
    held_module_ = ::dlopen(kSoftHsmModule, RTLD_NOW | RTLD_LOCAL);
    ready_ = hsm_->make() && hsm_->keypair("EC:edwards25519", "01", "audit-ed25519") &&
             hsm_->keypair("EC:prime256v1", "02", "audit-p256");
  }
  static void TearDownTestSuite() {
    hsm_->remove();
    delete hsm_;
    hsm_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(ready_) << hsm_->error(); }

  // config is the configuration file's text with an [audit] section of the given lines.
  static std::string config(const std::string& audit_lines) {
    return std::string(kHead) + "[audit]\n" + audit_lines;
  }

  // token_lines names the object in the test token, its module and PIN file.
  static std::string token_lines(const std::string& object, const fs::path& pin_file) {
    return "pkcs11_uri = \"pkcs11:token=tg-test;object=" + object + "\"\n" + "pkcs11_module = \"" +
           kSoftHsmModule + "\"\n" + "pin_file = \"" + pin_file.string() + "\"\n";
  }

  // options loads a configuration (state_dir t_/state_name) and turns [audit] into the log's
  // options, as touchgated does.
  Options options(const std::string& object, const fs::path& pin_file,
                  const std::string& state_name = "state",
                  const std::string& more = "checkpoint_every = 2\n") {
    const std::string text = "[server]\nlisten = [\"127.0.0.1:2222\"]\nstate_dir = \"" +
                             (t_.path() / state_name).string() +
                             "\"\n[trust]\nuser_ca_keys = [\"ca.pub\"]\n[audit]\n" +
                             token_lines(object, pin_file) + more;
    auto c = policy::parse_config(text, t_.path(), "t.toml");
    EXPECT_TRUE(c) << (c ? "" : c.error().message);
    if (!c) return Options{};
    public_key_ = c->audit.public_key;
    return gateway::audit_options(c->audit);
  }

  static void expect_config_error(const std::string& text, int line, std::string_view what) {
    auto c = policy::parse_config(text, "/etc/tg", "t.toml");
    ASSERT_FALSE(c) << "accepted:\n" << text;
    EXPECT_EQ(c.error().code, "config_invalid");
    EXPECT_THAT(c.error().message, StartsWith("t.toml:" + std::to_string(line) + ":")) << text;
    EXPECT_THAT(c.error().message, HasSubstr(std::string(what))) << text;
  }

  // ssh_keygen_verifies runs checkpoint_ssh_keygen.sh (docs/audit-format.md section 4, with
  // stock ssh-keygen) over the last checkpoint of dir; head replaces its head hash when given.
  static int ssh_keygen_verifies(const fs::path& dir, const fs::path& pub,
                                 const std::string& head = "") {
    const std::string script = std::string(AUDIT_TEST_DIR) + "/checkpoint_ssh_keygen.sh";
    const auto r = ::touchgate::testing::run_command("PATH=/usr/bin:/bin sh '" + script + "' '" +
                                                     dir.string() + "' '" + pub.string() + "' " +
                                                     head + " 2>&1");
    last_ssh_keygen_ = r.output;
    return r.status;
  }

  static SoftHsm* hsm_;
  static void* held_module_;
  static bool ready_;
  static std::string last_ssh_keygen_;
  TempDir t_;
  fs::path public_key_;
};

SoftHsm* TokenKeyTest::hsm_ = nullptr;
void* TokenKeyTest::held_module_ = nullptr;
bool TokenKeyTest::ready_ = false;
std::string TokenKeyTest::last_ssh_keygen_;

TEST_F(TokenKeyTest, ConfigurationTakesAKeyFileOrATokenKey) {
  auto c = policy::parse_config(config(token_lines("audit-p256", "/etc/tg/audit.pin")), "/etc/tg",
                                "t.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->audit.pkcs11_uri, "pkcs11:token=tg-test;object=audit-p256");
  EXPECT_EQ(c->audit.pkcs11_module, fs::path(kSoftHsmModule));
  EXPECT_EQ(c->audit.pin_file, fs::path("/etc/tg/audit.pin"));
  EXPECT_TRUE(c->audit.key.empty());
  EXPECT_EQ(c->audit.public_key, fs::path("/var/lib/touchgate/audit_key.pub"));
  const Options o = gateway::audit_options(c->audit);
  EXPECT_TRUE(o.open_key);
  EXPECT_EQ(o.public_key_path, fs::path("/var/lib/touchgate/audit_key.pub"));

  // The module may come from the URI instead.
  c = policy::parse_config(config(std::string("pkcs11_uri = \"pkcs11:object=a?module-path=") +
                                  kSoftHsmModule + "\"\npin_file = \"p\"\n"),
                           "/etc/tg", "t.toml");
  ASSERT_TRUE(c) << c.error().message;

  // A key file, as before: its public key beside it.
  c = policy::parse_config(config("key = \"keys/audit\"\n"), "/etc/tg", "t.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->audit.key, fs::path("/etc/tg/keys/audit"));
  EXPECT_EQ(c->audit.public_key, fs::path("/etc/tg/keys/audit.pub"));
  EXPECT_FALSE(gateway::audit_options(c->audit).open_key);
}

TEST_F(TokenKeyTest, ConfigurationErrorsNameTheLine) {
  const std::string token = token_lines("audit-p256", "/etc/tg/audit.pin");
  // Both a key file and a token key (the URI is on line 7).
  expect_config_error(config("key = \"audit_key\"\n" + token), 7, "not both");
  // No PIN file.
  expect_config_error(config("pkcs11_uri = \"pkcs11:object=a\"\npkcs11_module = \"/m.so\"\n"), 6,
                      "pkcs11_uri needs pin_file");
  // No module.
  expect_config_error(config("pkcs11_uri = \"pkcs11:object=a\"\npin_file = \"p\"\n"), 6,
                      "needs pkcs11_module");
  // URIs that do not parse, or cannot be used.
  expect_config_error(config("pin_file = \"p\"\npkcs11_uri = \"pkcs11:object=%zz\"\n"), 7,
                      "audit.pkcs11_uri:");
  expect_config_error(config("pkcs11_uri = \"token=x\"\npin_file = \"p\"\n"), 6,
                      "audit.pkcs11_uri:");
  expect_config_error(config("pkcs11_uri = \"pkcs11:object=a;colour=red\"\npin_file = \"p\"\n"), 6,
                      "audit.pkcs11_uri:");
  expect_config_error(
      config("pkcs11_uri = \"pkcs11:object=a?module-name=softhsm2\"\npin_file = \"p\"\n"), 6,
      "module-name is not resolved");
  auto pin = policy::parse_config(
      config("pkcs11_uri = \"pkcs11:object=a?pin-value=271828\"\npin_file = \"p\"\n"), "/etc/tg",
      "t.toml");
  ASSERT_FALSE(pin);
  EXPECT_THAT(pin.error().message, StartsWith("t.toml:6:"));
  EXPECT_THAT(pin.error().message, HasSubstr("a PIN never goes into the configuration"));
  EXPECT_THAT(pin.error().message, ::testing::Not(HasSubstr("271828")));
  // A token's settings without a token.
  expect_config_error(config("key = \"k\"\npin_file = \"p\"\n"), 7, "set pkcs11_uri too");
  expect_config_error(config("pkcs11_module = \"/m.so\"\n"), 6, "set pkcs11_uri too");
}

TEST_F(TokenKeyTest, TokenSignsCheckpointsThatVerifyAndSshKeygenAccepts) {
  if (!fs::exists("/usr/bin/ssh-keygen")) GTEST_SKIP() << "no /usr/bin/ssh-keygen";
  const struct {
    const char* object;
    const char* type;
  } cases[] = {{"audit-ed25519", "ssh-ed25519 "}, {"audit-p256", "ecdsa-sha2-nistp256 "}};
  for (const auto& k : cases) {
    SCOPED_TRACE(k.object);
    Options o = options(k.object, hsm_->pin_file(), k.object);
    ASSERT_TRUE(o.open_key);
    auto log = AuditLog::open(o);
    ASSERT_TRUE(log) << log.error().code << ": " << log.error().message;
    for (int i = 0; i < 5; ++i)
      ASSERT_TRUE(append_wait(**log, Record("test_event").u64("n", static_cast<uint64_t>(i))));
    const std::string fingerprint = (*log)->key().fingerprint();
    EXPECT_THAT((*log)->key().describe(), HasSubstr("pkcs11:token=tg-test;object="));
    ASSERT_TRUE((*log)->close());

    // The writer recorded the token key's public line where verify looks for it.
    const std::string pub_text = ::touchgate::testing::read_all(public_key_);
    EXPECT_THAT(pub_text, StartsWith(k.type));
    EXPECT_THAT(pub_text, ::testing::EndsWith(" touchgate-audit\n"));
    auto pub = load_audit_public_key(public_key_);
    ASSERT_TRUE(pub) << pub.error().message;
    EXPECT_EQ(pub->fingerprint(), fingerprint);

    const auto r = verify_directory(o.dir, *pub);
    EXPECT_TRUE(r.clean()) << findings_text(r);
    EXPECT_TRUE(r.key_pinned);
    EXPECT_EQ(r.checkpoints, 3u);  // after records 2 and 4 (+1 checkpoint), and at close
    EXPECT_EQ(r.unsigned_tail, 0u);

    EXPECT_EQ(ssh_keygen_verifies(o.dir, public_key_), 0) << last_ssh_keygen_;
    EXPECT_THAT(last_ssh_keygen_, HasSubstr("Good \"touchgate-audit\" signature"));
    EXPECT_NE(ssh_keygen_verifies(o.dir, public_key_, std::string(64, 'a')), 0) << last_ssh_keygen_;

    // Opened again, the log goes on with the same key and the same public key file.
    auto again = AuditLog::open(o);
    ASSERT_TRUE(again) << again.error().message;
    ASSERT_TRUE(append_wait(**again, Record("test_event")));
    ASSERT_TRUE((*again)->close());
    EXPECT_EQ(::touchgate::testing::read_all(public_key_), pub_text);
    EXPECT_TRUE(verify_directory(o.dir, *pub).clean());
  }
}

// A token that is missing or refuses the PIN at start stops the start (fail closed), with the
// token's reason and never the PIN; no record is written.
TEST_F(TokenKeyTest, StartWithoutTheTokenIsRefused) {
  const fs::path wrong_pin = t_.path() / "wrong-pin";
  pkcs11::testing::write_file(wrong_pin, "271828\n");
  Options o = options("audit-p256", wrong_pin);
  auto log = AuditLog::open(o);
  ASSERT_FALSE(log);
  EXPECT_EQ(log.error().code, "pkcs11_login_failed");
  EXPECT_THAT(log.error().message, StartsWith("audit key: "));
  EXPECT_THAT(log.error().message, HasSubstr("CKR_PIN_INCORRECT"));
  EXPECT_THAT(log.error().message, ::testing::Not(HasSubstr("271828")));
  EXPECT_TRUE(list_segments(o.dir).empty());
  EXPECT_FALSE(fs::exists(public_key_));

  o = options("audit-p256", t_.path() / "no-such-pin");
  log = AuditLog::open(o);
  ASSERT_FALSE(log);
  EXPECT_EQ(log.error().code, "pkcs11_pin_file");

  o = options("no-such-key", hsm_->pin_file());
  log = AuditLog::open(o);
  ASSERT_FALSE(log);
  EXPECT_EQ(log.error().code, "pkcs11_key_not_found");

  const auto tokens = hsm_->dir() / "tokens";
  const auto away = hsm_->dir() / "tokens-away";
  fs::rename(tokens, away);
  fs::create_directory(tokens);
  o = options("audit-p256", hsm_->pin_file());
  log = AuditLog::open(o);
  fs::remove(tokens);
  fs::rename(away, tokens);
  ASSERT_FALSE(log);
  EXPECT_EQ(log.error().code, "pkcs11_token_not_found");
  EXPECT_TRUE(list_segments(o.dir).empty());
}

// The public key file verifiers trust holds another key (the audit key was replaced): the log
// does not start, rather than sign checkpoints that verify would reject.
TEST_F(TokenKeyTest, PublicKeyFileOfAnotherKeyIsRefused) {
  Options o = options("audit-ed25519", hsm_->pin_file());
  ASSERT_TRUE(AuditLog::open(o));
  const std::string ed25519_line = ::touchgate::testing::read_all(public_key_);
  o = options("audit-p256", hsm_->pin_file());
  auto log = AuditLog::open(o);
  ASSERT_FALSE(log);
  EXPECT_EQ(log.error().code, "audit_key_mismatch");
  EXPECT_THAT(log.error().message, HasSubstr(public_key_.string()));
  EXPECT_EQ(::touchgate::testing::read_all(public_key_), ed25519_line);

  // The same for a key file whose .pub holds another key.
  const fs::path key = t_.path() / "file_key";
  ASSERT_TRUE(AuditKey::load_or_create(key));
  fs::copy_file(public_key_, key.string() + ".pub", fs::copy_options::overwrite_existing);
  auto file_key = AuditKey::load_or_create(key);
  ASSERT_FALSE(file_key);
  EXPECT_EQ(file_key.error().code, "audit_key_mismatch");
}

// The token goes away between checkpoints: records are still written and chained; each
// checkpoint meanwhile is written unsigned and reported; signatures resume when it is back.
TEST_F(TokenKeyTest, TokenGoneBetweenCheckpoints) {
  if (!fs::exists("/usr/bin/ssh-keygen")) GTEST_SKIP() << "no /usr/bin/ssh-keygen";
  Options o = options("audit-p256", hsm_->pin_file());
  std::mutex mu;
  std::vector<std::pair<uint64_t, std::string>> unsigned_reports;
  std::vector<std::pair<uint64_t, uint64_t>> resumed_reports;
  o.on_checkpoint_unsigned = [&](uint64_t seq, const Error& e) {
    std::lock_guard lock(mu);
    unsigned_reports.emplace_back(seq, e.code);
  };
  o.on_checkpoint_signed_again = [&](uint64_t seq, uint64_t missed) {
    std::lock_guard lock(mu);
    resumed_reports.emplace_back(seq, missed);
  };
  auto log = AuditLog::open(o);
  ASSERT_TRUE(log) << log.error().message;
  const auto append_two = [&] {
    for (int i = 0; i < 2; ++i) {
      auto seq = append_wait(**log, Record("test_event"));
      ASSERT_TRUE(seq) << seq.error().code << ": " << seq.error().message;
    }
  };
  append_two();  // seq 1, 2, checkpoint 3 (signed)

  const auto tokens = hsm_->dir() / "tokens";
  const auto away = hsm_->dir() / "tokens-away";
  fs::rename(tokens, away);
  fs::create_directory(tokens);
  append_two();  // seq 4, 5, checkpoint 6 (unsigned)
  append_two();  // seq 7, 8, checkpoint 9 (unsigned)
  EXPECT_TRUE((*log)->healthy());
  fs::remove(tokens);
  fs::rename(away, tokens);
  append_two();  // seq 10, 11, checkpoint 12 (signed again)
  ASSERT_TRUE((*log)->close());

  {
    std::lock_guard lock(mu);
    ASSERT_EQ(unsigned_reports.size(), 2u);
    EXPECT_EQ(unsigned_reports[0],
              std::make_pair(uint64_t{6}, std::string("pkcs11_token_missing")));
    EXPECT_EQ(unsigned_reports[1],
              std::make_pair(uint64_t{9}, std::string("pkcs11_token_missing")));
    ASSERT_EQ(resumed_reports.size(), 1u);
    EXPECT_EQ(resumed_reports[0], std::make_pair(uint64_t{12}, uint64_t{2}));
  }

  // Every record is there and chained; the two unsigned checkpoints are what verify reports.
  auto pub = load_audit_public_key(public_key_);
  ASSERT_TRUE(pub) << pub.error().message;
  const auto r = verify_directory(o.dir, *pub);
  EXPECT_EQ(r.records, 12u);
  EXPECT_EQ(r.last_seq, 12u);
  EXPECT_EQ(r.checkpoints, 2u);  // seq 3 and 12
  EXPECT_EQ(r.unsigned_tail, 0u);
  std::vector<uint64_t> bad;
  for (const auto& f : r.findings) {
    EXPECT_EQ(f.kind, "bad_checkpoint") << findings_text(r);
    EXPECT_NE(f.message.find("checkpoint not signed"), std::string::npos) << f.message;
    bad.push_back(f.seq);
  }
  EXPECT_EQ(bad, (std::vector<uint64_t>{6, 9})) << findings_text(r);
  // The checkpoint after the token's return signs the whole chain, as stock ssh-keygen checks.
  EXPECT_EQ(ssh_keygen_verifies(o.dir, public_key_), 0) << last_ssh_keygen_;
}

}  // namespace
}  // namespace touchgate::audit
