#include "gateway/log.h"

#include <gtest/gtest.h>

#include "gateway/connection.h"

namespace touchgate::gateway {
namespace {

TEST(LogTest, PlainValuesAreNotQuoted) {
  EXPECT_EQ(format_log_fields({{"conn", 7}, {"code", "cert_expired"}}), "conn=7 code=cert_expired");
}

TEST(LogTest, ValuesWithSpacesQuotesOrEqualsAreQuoted) {
  EXPECT_EQ(format_log_fields({{"reason", "certificate expired at X"}}),
            "reason=\"certificate expired at X\"");
  EXPECT_EQ(format_log_fields({{"k", "a=b"}}), "k=\"a=b\"");
  EXPECT_EQ(format_log_fields({{"k", "say \"hi\""}}), "k=\"say \\\"hi\\\"\"");
  EXPECT_EQ(format_log_fields({{"k", ""}}), "k=\"\"");
}

TEST(LogTest, ControlCharactersFromPeersCannotForgeLines) {
  // A user name such as "alice\nts=... event=auth_accepted" must stay on one line.
  std::string evil = "alice\nevent=auth_accepted";
  std::string line = format_log_fields({{"user", evil}});
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_EQ(line, "user=\"alice\\x0aevent=auth_accepted\"");
}

TEST(DisconnectTextTest, NamesTheReasonAndTheCode) {
  EXPECT_EQ(disconnect_text("cert_expired", "certificate expired at 2026-01-01T00:00:00Z"),
            "touchgate: certificate expired at 2026-01-01T00:00:00Z (cert_expired)");
}

}  // namespace
}  // namespace touchgate::gateway
