#include "ssh/agent.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "ssh/key.h"
#include "ssh/sshsig.h"
#include "ssh/writer.h"

// Frames in tests/data/touch/agent/ are what a real ssh-agent sent (tests/data/touch/generate.sh).
namespace touchgate::ssh::agent {
namespace {

std::vector<uint8_t> read_data(const std::string& name) {
  std::ifstream in(std::string(TOUCHGATE_TEST_DATA) + "/touch/" + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<uint8_t> pub_blob(const std::string& name) {
  auto data = read_data(name + ".pub");
  auto line = parse_key_line(std::string(data.begin(), data.end()));
  EXPECT_TRUE(line.has_value()) << name;
  return line ? line->blob : std::vector<uint8_t>{};
}

// body strips the uint32 length of a whole frame.
std::vector<uint8_t> body(const std::vector<uint8_t>& frame) {
  EXPECT_GE(frame.size(), 4u);
  return {frame.begin() + 4, frame.end()};
}

std::vector<uint8_t> frame(const std::vector<uint8_t>& b) {
  return Writer().string(std::span<const uint8_t>(b)).take();
}

template <class T>
std::string code_of(const Result<T>& r) {
  return r ? "ok" : r.error().code;
}

const char* const kAgentKeys[] = {"sk_ecdsa",           "sk_ed25519", "sk_ecdsa_notouch",
                                  "sk_ed25519_notouch", "ed25519",    "ecdsa256",
                                  "ecdsa521",           "rsa"};

// ---- Requests ----

TEST(AgentTest, EncodesRequestIdentitiesAsOpenSshDoes) {
  EXPECT_EQ(encode_request_identities(), (std::vector<uint8_t>{0, 0, 0, 1, kRequestIdentities}));
  EXPECT_EQ(encode_request_identities(), read_data("agent/identities_request.bin"));
}

TEST(AgentTest, EncodesSignRequests) {
  const auto data =
      sshsig_signed_data("touchgate-mfa@test", SshsigHash::kSha512, read_data("message.txt"));
  EXPECT_EQ(encode_sign_request(pub_blob("ed25519"), data, 0),
            read_data("agent/sign_request_ed25519.bin"));
  EXPECT_EQ(encode_sign_request(pub_blob("rsa"), data, kSignRsaSha512),
            read_data("agent/sign_request_rsa.bin"));
  EXPECT_EQ(encode_sign_request(pub_blob("rsa"), data, kSignRsaSha256),
            read_data("agent/sign_request_rsa_sha256.bin"));

  const std::vector<uint8_t> key = {1, 2, 3};
  const std::vector<uint8_t> payload = {9, 8};
  const auto req = encode_sign_request(key, payload, 0x0a0b0c0d);
  EXPECT_EQ(req, (std::vector<uint8_t>{0, 0, 0, 18, kSignRequest, 0,    0,    0,   3, 1, 2, 3, 0, 0,
                                       0, 2, 9, 8,  0x0a,         0x0b, 0x0c, 0x0d}));
}

// ---- FrameBuffer ----

TEST(AgentFrameTest, ReassemblesAFrameFedByteByByte) {
  const auto answer = read_data("agent/identities_answer.bin");
  FrameBuffer fb;
  for (size_t i = 0; i < answer.size(); ++i) {
    auto none = fb.next();
    ASSERT_TRUE(none.has_value()) << i;
    EXPECT_FALSE(none->has_value()) << i;
    fb.append(Bytes(answer.data() + i, 1));
  }
  auto got = fb.next();
  ASSERT_TRUE(got.has_value() && got->has_value());
  EXPECT_EQ(**got, body(answer));
  EXPECT_EQ(fb.buffered(), 0u);
  auto after = fb.next();
  ASSERT_TRUE(after.has_value());
  EXPECT_FALSE(after->has_value());
}

TEST(AgentFrameTest, SplitsSeveralFramesFromOneAppend) {
  auto stream = read_data("agent/sign_response_ed25519.bin");
  const auto second = read_data("agent/sign_response_unknown.bin");
  stream.insert(stream.end(), second.begin(), second.end());
  stream.push_back(0);  // start of a third frame's length
  FrameBuffer fb;
  fb.append(stream);
  auto a = fb.next();
  auto b = fb.next();
  auto c = fb.next();
  ASSERT_TRUE(a && a->has_value() && b && b->has_value() && c);
  EXPECT_EQ(**a, body(read_data("agent/sign_response_ed25519.bin")));
  EXPECT_EQ(**b, (std::vector<uint8_t>{kFailure}));
  EXPECT_FALSE(c->has_value());
  EXPECT_EQ(fb.buffered(), 1u);
}

TEST(AgentFrameTest, ZeroLengthBreaksTheStreamForGood) {
  FrameBuffer fb;
  fb.append(std::vector<uint8_t>{0, 0, 0, 0});
  EXPECT_EQ(code_of(fb.next()), "agent_frame_malformed");
  fb.append(encode_request_identities());
  EXPECT_EQ(fb.buffered(), 0u);
  EXPECT_EQ(code_of(fb.next()), "agent_frame_malformed");
}

TEST(AgentFrameTest, FrameLengthIsCapped) {
  std::vector<uint8_t> max(kMaxFrame, 0x55);
  max[0] = kSignResponse;
  FrameBuffer ok;
  ok.append(frame(max));
  auto got = ok.next();
  ASSERT_TRUE(got.has_value() && got->has_value());
  EXPECT_EQ((*got)->size(), kMaxFrame);

  FrameBuffer over;
  over.append(Writer().u32(kMaxFrame + 1).u8(kSignResponse).take());  // refused from the header
  EXPECT_EQ(code_of(over.next()), "agent_frame_malformed");

  FrameBuffer huge;
  huge.append(std::vector<uint8_t>{0xff, 0xff, 0xff, 0xff});
  EXPECT_EQ(code_of(huge.next()), "agent_frame_malformed");
}

TEST(AgentFrameTest, MoreThanOneFrameOfUnreadDataBreaksTheStream) {
  std::vector<uint8_t> max(kMaxFrame, 0x55);
  auto data = frame(max);
  FrameBuffer fb;
  fb.append(data);
  EXPECT_EQ(fb.buffered(), kMaxFrame + 4);
  fb.append(std::vector<uint8_t>{0});  // the agent keeps talking while a whole frame is unread
  EXPECT_EQ(fb.buffered(), 0u);
  EXPECT_EQ(code_of(fb.next()), "agent_frame_malformed");

  FrameBuffer once;
  data.push_back(0);
  once.append(data);
  EXPECT_EQ(code_of(once.next()), "agent_frame_malformed");
}

// ---- IDENTITIES_ANSWER ----

TEST(AgentTest, ParsesARealIdentitiesAnswer) {
  const auto answer = body(read_data("agent/identities_answer.bin"));
  auto ids = parse_identities_answer(answer);
  ASSERT_TRUE(ids.has_value()) << ids.error().message;
  ASSERT_EQ(ids->size(), std::size(kAgentKeys));
  for (size_t i = 0; i < ids->size(); ++i) {
    SCOPED_TRACE(kAgentKeys[i]);
    EXPECT_EQ((*ids)[i].key_blob, pub_blob(kAgentKeys[i]));
    EXPECT_EQ((*ids)[i].comment, std::string(kAgentKeys[i]) + "@touchgate");
  }
}

TEST(AgentTest, EmptyAndFullIdentityLists) {
  auto none = parse_identities_answer(std::vector<uint8_t>{kIdentitiesAnswer, 0, 0, 0, 0});
  ASSERT_TRUE(none.has_value());
  EXPECT_TRUE(none->empty());

  Writer full;
  full.u8(kIdentitiesAnswer).u32(kMaxIdentities);
  for (uint32_t i = 0; i < kMaxIdentities; ++i) full.string("k").string("");
  auto ids = parse_identities_answer(full.bytes());
  ASSERT_TRUE(ids.has_value());
  EXPECT_EQ(ids->size(), kMaxIdentities);

  Writer over;
  over.u8(kIdentitiesAnswer).u32(kMaxIdentities + 1);
  for (uint32_t i = 0; i <= kMaxIdentities; ++i) over.string("k").string("");
  EXPECT_EQ(code_of(parse_identities_answer(over.bytes())), "agent_malformed");
  // A huge count with nothing behind it.
  EXPECT_EQ(
      code_of(parse_identities_answer(std::vector<uint8_t>{kIdentitiesAnswer, 0, 0, 3, 0xff})),
      "agent_malformed");
}

TEST(AgentTest, IdentitiesAnswerRefusals) {
  EXPECT_EQ(code_of(parse_identities_answer(std::vector<uint8_t>{kFailure})), "agent_refused");
  EXPECT_EQ(code_of(parse_identities_answer(std::vector<uint8_t>{})), "agent_malformed");
  EXPECT_EQ(code_of(parse_identities_answer(body(read_data("agent/sign_response_ed25519.bin")))),
            "agent_malformed");
  EXPECT_EQ(code_of(parse_identities_answer(std::vector<uint8_t>{kSuccess})), "agent_malformed");

  const auto answer = body(read_data("agent/identities_answer.bin"));
  for (size_t len = 0; len < answer.size(); ++len) {
    EXPECT_EQ(code_of(parse_identities_answer(Bytes(answer.data(), len))), "agent_malformed")
        << len;
  }
  auto longer = answer;
  longer.push_back(0);
  EXPECT_EQ(code_of(parse_identities_answer(longer)), "agent_malformed");

  const auto empty_blob =
      Writer().u8(kIdentitiesAnswer).u32(1).string(std::string_view()).string("c").take();
  EXPECT_EQ(code_of(parse_identities_answer(empty_blob)), "agent_malformed");
  const auto nul_comment =
      Writer().u8(kIdentitiesAnswer).u32(1).string("k").string(std::string_view("a\0b", 3)).take();
  EXPECT_EQ(code_of(parse_identities_answer(nul_comment)), "agent_malformed");
  const auto count_too_high = Writer().u8(kIdentitiesAnswer).u32(2).string("k").string("c").take();
  EXPECT_EQ(code_of(parse_identities_answer(count_too_high)), "agent_malformed");
}

// ---- SIGN_RESPONSE ----

TEST(AgentTest, ParsesRealSignResponses) {
  for (const char* name : {"sk_ecdsa", "sk_ed25519", "ed25519", "ecdsa256", "ecdsa521", "rsa",
                           "rsa_sha256", "rsa_sha1"}) {
    SCOPED_TRACE(name);
    const auto response = body(read_data("agent/sign_response_" + std::string(name) + ".bin"));
    auto sig = parse_sign_response(response);
    ASSERT_TRUE(sig.has_value()) << sig.error().message;
    EXPECT_EQ(*sig, std::vector<uint8_t>(response.begin() + 5, response.end()));
  }
}

TEST(AgentTest, SignResponseRefusals) {
  EXPECT_EQ(code_of(parse_sign_response(body(read_data("agent/sign_response_unknown.bin")))),
            "agent_refused");
  EXPECT_EQ(code_of(parse_sign_response(std::vector<uint8_t>{kExtensionFailure})), "agent_refused");
  EXPECT_EQ(code_of(parse_sign_response(std::vector<uint8_t>{})), "agent_malformed");
  EXPECT_EQ(code_of(parse_sign_response(std::vector<uint8_t>{kSuccess})), "agent_malformed");
  EXPECT_EQ(code_of(parse_sign_response(body(read_data("agent/identities_answer.bin")))),
            "agent_malformed");
  EXPECT_EQ(code_of(parse_sign_response(std::vector<uint8_t>{kSignResponse, 0, 0, 0, 0})),
            "agent_malformed");

  const auto response = body(read_data("agent/sign_response_sk_ed25519.bin"));
  for (size_t len = 0; len < response.size(); ++len) {
    EXPECT_EQ(code_of(parse_sign_response(Bytes(response.data(), len))), "agent_malformed") << len;
  }
  auto longer = response;
  longer.push_back(0);
  EXPECT_EQ(code_of(parse_sign_response(longer)), "agent_malformed");
}

}  // namespace
}  // namespace touchgate::ssh::agent
