#include "ssh/address.h"

#include <gtest/gtest.h>

#include <string>

namespace touchgate::ssh {
namespace {

IpAddress ip(std::string_view text) {
  auto a = IpAddress::parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a ? *a : IpAddress{};
}

TEST(AddressTest, ParsesIpv4AndIpv6) {
  IpAddress v4 = ip("192.168.1.20");
  EXPECT_FALSE(v4.v6);
  EXPECT_EQ(v4.bytes[0], 192);
  EXPECT_EQ(v4.bytes[3], 20);
  EXPECT_EQ(v4.to_string(), "192.168.1.20");
  IpAddress v6 = ip("2001:DB8::1");
  EXPECT_TRUE(v6.v6);
  EXPECT_EQ(v6.to_string(), "2001:db8::1");
  EXPECT_EQ(ip("::").to_string(), "::");
}

TEST(AddressTest, V4MappedIsNormalised) {
  EXPECT_EQ(ip("::ffff:10.1.2.3"), ip("10.1.2.3"));
  EXPECT_FALSE(ip("::ffff:10.1.2.3").v6);
  EXPECT_TRUE(ip("::10.1.2.3").v6);  // v4-compatible is not v4-mapped
}

TEST(AddressTest, RefusesMalformedAddresses) {
  for (std::string_view bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", " 1.2.3.4", "1.2.3.4 ",
                               "[::1]", "fe80::1%eth0", "1::2::3", "::1/128", "localhost"}) {
    auto r = IpAddress::parse(bad);
    EXPECT_FALSE(r.has_value()) << bad;
  }
  EXPECT_FALSE(IpAddress::parse(std::string_view("1.2.3.4\0", 8)));
  EXPECT_FALSE(IpAddress::parse(std::string(100, '1')));
}

TEST(CidrTest, ParsesBlocksAndSingleAddresses) {
  auto c = Cidr::parse("10.0.0.0/8");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->prefix, 8);
  EXPECT_TRUE(c->contains(ip("10.255.0.1")));
  EXPECT_FALSE(c->contains(ip("11.0.0.1")));
  EXPECT_TRUE(c->contains(ip("::ffff:10.9.9.9")));

  auto single = Cidr::parse("10.0.0.1");
  ASSERT_TRUE(single);
  EXPECT_EQ(single->prefix, 32);
  EXPECT_TRUE(single->contains(ip("10.0.0.1")));
  EXPECT_FALSE(single->contains(ip("10.0.0.2")));

  auto v6 = Cidr::parse("2001:db8::/32");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->contains(ip("2001:db8:ffff::1")));
  EXPECT_FALSE(v6->contains(ip("2001:db9::1")));
  EXPECT_FALSE(v6->contains(ip("10.0.0.1")));

  auto odd = Cidr::parse("192.168.0.128/25");
  ASSERT_TRUE(odd);
  EXPECT_TRUE(odd->contains(ip("192.168.0.255")));
  EXPECT_FALSE(odd->contains(ip("192.168.0.127")));
}

TEST(CidrTest, ZeroPrefixMatchesItsFamilyOnly) {
  auto any4 = Cidr::parse("0.0.0.0/0");
  ASSERT_TRUE(any4);
  EXPECT_TRUE(any4->contains(ip("203.0.113.7")));
  EXPECT_FALSE(any4->contains(ip("::1")));
  auto any6 = Cidr::parse("::/0");
  ASSERT_TRUE(any6);
  EXPECT_TRUE(any6->contains(ip("::1")));
  EXPECT_FALSE(any6->contains(ip("203.0.113.7")));
}

TEST(CidrTest, V4MappedBlockIsTheIpv4Block) {
  auto c = Cidr::parse("::ffff:10.0.0.0/104");
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->base.v6);
  EXPECT_EQ(c->prefix, 8);
  EXPECT_TRUE(c->contains(ip("10.1.2.3")));
}

TEST(CidrTest, RefusesMalformedBlocks) {
  for (std::string_view bad :
       {"", "10.1.0.0/8", "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/+8",
        "10.0.0.0/8/8", "/8", "10.0.0.0 /8", "10.0.0.0/1000", "*", "10.0.0.*", "2001:db8::1/32",
        "host.example.com", "10.0.0.0/8,"}) {
    auto r = Cidr::parse(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().code, "cidr_malformed");
  }
}

TEST(CidrListTest, ParsesOpenSshSourceAddressLists) {
  auto list = parse_cidr_list("192.168.0.0/16,10.0.0.1,2001:db8::/32");
  ASSERT_TRUE(list);
  EXPECT_EQ(list->size(), 3u);
  EXPECT_TRUE(cidr_list_contains(*list, ip("192.168.44.1")));
  EXPECT_TRUE(cidr_list_contains(*list, ip("10.0.0.1")));
  EXPECT_TRUE(cidr_list_contains(*list, ip("2001:db8::99")));
  EXPECT_FALSE(cidr_list_contains(*list, ip("10.0.0.2")));
  EXPECT_FALSE(cidr_list_contains({}, ip("10.0.0.2")));
}

TEST(CidrListTest, RefusesMalformedLists) {
  for (std::string_view bad : {"", ",", "10.0.0.1,", ",10.0.0.1", "10.0.0.1,,10.0.0.2",
                               "10.0.0.1, 10.0.0.2", "10.0.0.1,10.1.0.0/8"}) {
    auto r = parse_cidr_list(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().code, "cidr_malformed");
  }
}

TEST(CidrListTest, CapsTheNumberOfEntries) {
  std::string list = "10.0.0.1";
  for (int i = 1; i < 256; ++i) list += ",10.0.0.1";
  EXPECT_TRUE(parse_cidr_list(list));
  list += ",10.0.0.1";
  EXPECT_FALSE(parse_cidr_list(list));
}

}  // namespace
}  // namespace touchgate::ssh
