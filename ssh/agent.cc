// Trust boundary: every byte parsed here comes from the client's forwarded agent.
#include "ssh/agent.h"

#include <algorithm>

#include "ssh/writer.h"

namespace touchgate::ssh::agent {
namespace {

constexpr size_t kLengthSize = 4;

tl::unexpected<Error> malformed(const std::string& message) {
  return fail("agent_malformed", "agent " + message);
}

tl::unexpected<Error> refused(const std::string& message) {
  return fail("agent_refused", "agent " + message);
}

// frame prefixes body with its uint32 length.
std::vector<uint8_t> frame(const std::vector<uint8_t>& body) {
  return Writer().string(std::span<const uint8_t>(body)).take();
}

uint32_t peek_length(const std::vector<uint8_t>& buf) {
  Reader r(buf);
  uint32_t len = 0;
  (void)r.u32(&len);
  return len;
}

}  // namespace

std::vector<uint8_t> encode_request_identities() {
  return frame(Writer().u8(kRequestIdentities).take());
}

std::vector<uint8_t> encode_sign_request(Bytes key_blob, Bytes data, uint32_t flags) {
  return frame(Writer().u8(kSignRequest).string(key_blob).string(data).u32(flags).take());
}

void FrameBuffer::append(Bytes data) {
  if (broken_ || data.empty()) return;
  if (data.size() > kLengthSize + kMaxFrame - buf_.size()) {
    broken_ = true;  // more than one whole frame unread: the agent talks out of turn
    why_broken_ = "agent sent more than one frame's worth of data at once";
    buf_.clear();
    return;
  }
  buf_.insert(buf_.end(), data.begin(), data.end());
}

Result<std::optional<std::vector<uint8_t>>> FrameBuffer::next() {
  auto broken = [this](const std::string& message) {
    broken_ = true;
    buf_.clear();
    return fail("agent_frame_malformed", message);
  };
  if (broken_) {
    return broken(why_broken_.empty() ? "agent stream is unusable after an earlier error"
                                      : why_broken_);
  }
  if (buf_.size() < kLengthSize) return std::nullopt;
  const uint32_t len = peek_length(buf_);
  if (len == 0) return broken("agent sent an empty frame");
  if (len > kMaxFrame) {
    return broken("agent frame of " + std::to_string(len) + " bytes is over the " +
                  std::to_string(kMaxFrame) + " byte limit");
  }
  if (buf_.size() - kLengthSize < len) return std::nullopt;
  const auto begin = buf_.begin() + kLengthSize;
  std::vector<uint8_t> body(begin, begin + len);
  buf_.erase(buf_.begin(), begin + len);
  return body;
}

Result<std::vector<Identity>> parse_identities_answer(Bytes body) {
  Reader r(body);
  uint8_t type = 0;
  if (!r.u8(&type)) return malformed("sent an empty message");
  if (type == kFailure) return refused("refused to list its keys");
  if (type != kIdentitiesAnswer) {
    return malformed("answered the key list request with message type " + std::to_string(type));
  }
  uint32_t count = 0;
  if (!r.u32(&count)) return malformed("key list is truncated");
  if (count > kMaxIdentities) {
    return malformed("lists " + std::to_string(count) + " keys, more than " +
                     std::to_string(kMaxIdentities));
  }
  std::vector<Identity> out;
  // Each entry takes at least 8 bytes: never reserve more than the body can hold.
  out.reserve(std::min<size_t>(count, r.remaining() / 8));
  for (uint32_t i = 0; i < count; ++i) {
    Identity id;
    Bytes blob;
    if (!r.string(&blob) || !r.text_copy(&id.comment)) return malformed("key list is truncated");
    if (blob.empty()) return malformed("lists an empty key");
    id.key_blob.assign(blob.begin(), blob.end());
    out.push_back(std::move(id));
  }
  if (!r.finish()) return malformed("key list has trailing bytes");
  return out;
}

Result<std::vector<uint8_t>> parse_sign_response(Bytes body) {
  Reader r(body);
  uint8_t type = 0;
  if (!r.u8(&type)) return malformed("sent an empty message");
  if (type == kFailure || type == kExtensionFailure) return refused("refused to sign");
  if (type != kSignResponse) {
    return malformed("answered the sign request with message type " + std::to_string(type));
  }
  Bytes sig;
  if (!r.string(&sig)) return malformed("signature is truncated");
  if (!r.finish()) return malformed("sign response has trailing bytes");
  if (sig.empty()) return malformed("sent an empty signature");
  return std::vector<uint8_t>(sig.begin(), sig.end());
}

}  // namespace touchgate::ssh::agent
