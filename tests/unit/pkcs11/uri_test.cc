#include "pkcs11/uri.h"

#include <string>

#include <gtest/gtest.h>

namespace touchgate::pkcs11 {
namespace {

Uri parse_ok(std::string_view text) {
  auto uri = parse_uri(text);
  EXPECT_TRUE(uri) << text << ": " << (uri ? "" : uri.error().message);
  return uri ? *uri : Uri{};
}

Error parse_bad(std::string_view text) {
  auto uri = parse_uri(text);
  EXPECT_FALSE(uri) << text;
  return uri ? Error{} : uri.error();
}

TEST(UriTest, EmptyPathIsAnyToken) {
  EXPECT_EQ(parse_ok("pkcs11:"), Uri{});
  EXPECT_EQ(parse_ok("PKCS11:"), Uri{});
}

// The examples of RFC 7512 section 3 that touchgate accepts.
TEST(UriTest, Rfc7512Examples) {
  Uri u = parse_ok("pkcs11:object=my-pubkey;type=public");
  EXPECT_EQ(u.object, "my-pubkey");
  EXPECT_EQ(u.type, ObjectType::kPublic);

  u = parse_ok("pkcs11:object=my-key;type=private?pin-source=file:/etc/token");
  EXPECT_EQ(u.object, "my-key");
  EXPECT_EQ(u.type, ObjectType::kPrivate);
  EXPECT_EQ(u.pin_source, "file:/etc/token");

  u = parse_ok(
      "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;"
      "model=1.0;object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BE%2D%C8%F4%22%41%93%42%0A"
      "%8E%2B?pin-source=file:/etc/token_pin");
  EXPECT_EQ(u.token, "The Software PKCS#11 Softtoken");
  EXPECT_EQ(u.manufacturer, "Snake Oil, Inc.");
  EXPECT_EQ(u.model, "1.0");
  EXPECT_EQ(u.type, ObjectType::kCert);
  EXPECT_EQ(u.id, (std::vector<uint8_t>{0x69, 0x95, 0x3e, 0x5c, 0xf4, 0xbe, 0x2d, 0xc8, 0xf4, 0x22,
                                        0x41, 0x93, 0x42, 0x0a, 0x8e, 0x2b}));

  u = parse_ok("pkcs11:object=my-sign-key;type=private?module-name=mypkcs11");
  EXPECT_EQ(u.module_name, "mypkcs11");

  u = parse_ok("pkcs11:object=my-sign-key;type=private?module-path=/mnt/libmypkcs11.so.1");
  EXPECT_EQ(u.module_path, "/mnt/libmypkcs11.so.1");

  u = parse_ok("pkcs11:token=Software%20PKCS%2311%20softtoken;manufacturer=Snake%20Oil,%20Inc.");
  EXPECT_EQ(u.token, "Software PKCS#11 softtoken");

  u = parse_ok("pkcs11:slot-description=Sun%20Metaslot");
  EXPECT_EQ(u.slot_description, "Sun Metaslot");

  u = parse_ok(
      "pkcs11:library-manufacturer=Snake%20Oil,%20Inc.;library-description=Soft%20Token%20Library;"
      "library-version=1.23");
  EXPECT_EQ(u.library_manufacturer, "Snake Oil, Inc.");
  EXPECT_EQ(u.library_description, "Soft Token Library");
  EXPECT_EQ(u.library_version, (LibraryVersion{1, 23}));

  u = parse_ok(
      "pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;object=my-certificate;"
      "type=cert");
  EXPECT_EQ(u.token, "A name with a substring %;");

  // The RFC's label is 34 bytes: longer than any token label (CK_TOKEN_INFO.label is 32).
  EXPECT_NE(parse_bad("pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;"
                      "object=my-certificate;type=cert")
                .message.find("token: value longer than 32 bytes"),
            std::string::npos);
  u = parse_ok("pkcs11:object=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;type=cert");
  EXPECT_EQ(u.object, "Name with a small A with acute: \xc3\xa1");

  u = parse_ok(
      "pkcs11:slot-manufacturer=Open%20Source%20Project;slot-id=2;"
      "slot-description=Soft%20Token%20Library");
  EXPECT_EQ(u.slot_manufacturer, "Open Source Project");
  EXPECT_EQ(u.slot_id, 2u);
}

TEST(UriTest, LibraryVersionWithoutMinor) {
  EXPECT_EQ(parse_ok("pkcs11:library-version=7").library_version, (LibraryVersion{7, 0}));
}

TEST(UriTest, EmptyValueIsPresent) {
  const Uri u = parse_ok("pkcs11:token=;id=");
  EXPECT_EQ(u.token, "");
  EXPECT_EQ(u.id, std::vector<uint8_t>{});
}

TEST(UriTest, QueryMayHoldSlashAndQuestionMark) {
  EXPECT_EQ(parse_ok("pkcs11:?module-path=/usr/lib/a?b.so").module_path, "/usr/lib/a?b.so");
}

TEST(UriTest, VendorAttributesIgnored) {
  const Uri u = parse_ok("pkcs11:token=t;x-vendor-aaa=value-a?x-vendor_bbb=value-b");
  Uri expected;
  expected.token = "t";
  EXPECT_EQ(u, expected);
}

TEST(UriTest, PinValueRefusedWithoutQuotingIt) {
  const Error e = parse_bad("pkcs11:token=t?pin-value=123456");
  EXPECT_EQ(e.code, "pkcs11_bad_uri");
  EXPECT_NE(e.message.find("pin-value"), std::string::npos);
  EXPECT_NE(e.message.find("file"), std::string::npos);
  EXPECT_EQ(e.message.find("123456"), std::string::npos);
  // Also when it comes twice or after a duplicate.
  EXPECT_EQ(parse_bad("pkcs11:?pin-value=1&pin-value=2").message.find("given twice"),
            std::string::npos);
}

TEST(UriTest, Refusals) {
  struct Case {
    std::string text;
    std::string in_message;
  };
  const Case cases[] = {
      {"pkcs11", "does not start with pkcs11:"},
      {"pkcs12:token=t", "does not start with pkcs11:"},
      {"token=t", "does not start with pkcs11:"},
      {"pkcs11:vendor-aaa=value-a", "unknown path attribute 'vendor-aaa'"},
      {"pkcs11:Token=t", "unknown path attribute 'Token'"},
      {"pkcs11:?foo=bar", "unknown query attribute 'foo'"},
      {"pkcs11:token=a;token=b", "token given twice"},
      {"pkcs11:id=%01;id=%02", "id given twice"},
      {"pkcs11:?module-path=/a&module-path=/b", "module-path given twice"},
      {"pkcs11:token=a;;object=b", "empty path attribute"},
      {"pkcs11:token=a;", "empty path attribute"},
      {"pkcs11:?module-name=a&", "empty query attribute"},
      {"pkcs11:token", "without name=value"},
      {"pkcs11:=x", "without name=value"},
      {"pkcs11:token=a%2", "truncated percent escape"},
      {"pkcs11:token=a%", "truncated percent escape"},
      {"pkcs11:token=a%zz", "bad percent escape"},
      {"pkcs11:token=a b", "character ' ' must be percent-encoded"},
      {"pkcs11:token=a/b", "character '/' must be percent-encoded"},
      {"pkcs11:token=a#b", "character '#' must be percent-encoded"},
      {"pkcs11:token=\xc3\xa1", "byte 0xc3 must be percent-encoded"},
      {"pkcs11:token=a%00b", "NUL byte"},
      {"pkcs11:token=" + std::string(33, 'a'), "token: value longer than 32 bytes"},
      {"pkcs11:serial=" + std::string(17, '1'), "serial: value longer than 16 bytes"},
      {"pkcs11:type=secret", "type must be one of"},
      {"pkcs11:type=Private", "type must be one of"},
      {"pkcs11:slot-id=", "slot-id must be a decimal number"},
      {"pkcs11:slot-id=-1", "slot-id must be a decimal number"},
      {"pkcs11:slot-id=0x10", "slot-id must be a decimal number"},
      {"pkcs11:slot-id=99999999999999999999999", "slot-id must be a decimal number"},
      {"pkcs11:library-version=1.", "library-version"},
      {"pkcs11:library-version=.1", "library-version"},
      {"pkcs11:library-version=256", "library-version"},
      {"pkcs11:library-version=1.2.3", "library-version"},
      {"pkcs11:?module-path=lib.so", "module-path must be an absolute path"},
      {"pkcs11:?module-name=a/b", "module-name must be a name without '/'"},
      {"pkcs11:?module-name=", "module-name must be a name without '/'"},
      {"pkcs11:?pin-source=a%20b&pin-source=c", "pin-source given twice"},
      {"pkcs11:?pin-source=a b", "character ' ' must be percent-encoded"},
      {"pkcs11:?pin-source=a;b", "character ';' must be percent-encoded"},
      {"pkcs11:id=" + std::string(256 * 3, '%'), "bad percent escape"},
      {"pkcs11:x-=1", "unknown path attribute"},
  };
  for (const auto& c : cases) {
    const Error e = parse_bad(c.text);
    EXPECT_EQ(e.code, "pkcs11_bad_uri") << c.text;
    EXPECT_NE(e.message.find(c.in_message), std::string::npos) << c.text << ": " << e.message;
  }
}

TEST(UriTest, IdLengthBounded) {
  std::string id;
  for (int i = 0; i < 255; ++i) id += "%AB";
  EXPECT_EQ(parse_ok("pkcs11:id=" + id).id->size(), 255u);
  EXPECT_NE(parse_bad("pkcs11:id=" + id + "%AB").message.find("id: longer than 255 bytes"),
            std::string::npos);
}

TEST(UriTest, LengthBounded) {
  const std::string head = "pkcs11:x-pad=";
  const std::string fits = head + std::string(kMaxUri - head.size(), 'a');
  EXPECT_TRUE(parse_uri(fits));
  EXPECT_NE(parse_bad(fits + "a").message.find("longer than 4096 bytes"), std::string::npos);
}

TEST(UriTest, FormatRoundTrips) {
  const char* texts[] = {
      "pkcs11:",
      "pkcs11:token=a%20b%3B%25%26c;object=ca;type=private;id=%00%01%FF",
      "pkcs11:library-version=2.5;slot-id=18446744073709551615?module-path=/x/y.so&pin-source="
      "file:/etc/pin%26x",
      "pkcs11:model=m;serial=s;manufacturer=m%C3%A1;slot-description=d;slot-manufacturer=sm;"
      "library-manufacturer=lm;library-description=ld?module-name=softhsm2",
  };
  for (const char* text : texts) {
    const Uri u = parse_ok(text);
    const std::string formatted = format_uri(u);
    EXPECT_EQ(parse_ok(formatted), u) << text << " -> " << formatted;
    EXPECT_EQ(format_uri(parse_ok(formatted)), formatted);
  }
  Uri u;
  u.token = "CA token";
  u.object = "ca";
  u.type = ObjectType::kPrivate;
  u.id = std::vector<uint8_t>{0x01};
  EXPECT_EQ(format_uri(u), "pkcs11:token=CA%20token;object=ca;type=private;id=%01");
  EXPECT_EQ(describe_uri(u), "pkcs11:token=CA%20token;object=ca;id=%01");
}

}  // namespace
}  // namespace touchgate::pkcs11
