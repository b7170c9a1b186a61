// The ssh-agent protocol as the gateway speaks it towards a forwarded agent
// (draft-miller-ssh-agent). Trust boundary: every byte read here comes from the client's agent,
// i.e. from the client.
//
// The gateway only ever sends REQUEST_IDENTITIES and SIGN_REQUEST, and only reads their answers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ssh/error.h"
#include "ssh/reader.h"

namespace touchgate::ssh::agent {

inline constexpr uint8_t kFailure = 5;
inline constexpr uint8_t kSuccess = 6;
inline constexpr uint8_t kRequestIdentities = 11;
inline constexpr uint8_t kIdentitiesAnswer = 12;
inline constexpr uint8_t kSignRequest = 13;
inline constexpr uint8_t kSignResponse = 14;
inline constexpr uint8_t kExtensionFailure = 28;

inline constexpr uint32_t kSignRsaSha256 = 0x02;
inline constexpr uint32_t kSignRsaSha512 = 0x04;

// Largest agent frame (length field value) the gateway accepts.
inline constexpr size_t kMaxFrame = 256 * 1024;
// Most identities read from one IDENTITIES_ANSWER.
inline constexpr uint32_t kMaxIdentities = 1024;

// encode_request_identities returns a complete frame (uint32 length, byte 11).
std::vector<uint8_t> encode_request_identities();
// encode_sign_request returns a complete SIGN_REQUEST frame.
std::vector<uint8_t> encode_sign_request(Bytes key_blob, Bytes data, uint32_t flags);

// FrameBuffer reassembles frames from a byte stream. append() buffers at most one largest frame
// (4 + kMaxFrame bytes); more unread bytes than that (an agent talking out of turn) break the
// stream. next() yields one whole message body (type byte + contents, without the length) once
// complete, nullopt while more bytes are needed, or an error ("agent_frame_malformed": zero
// length, over kMaxFrame, or too much unread data) after which the stream is unusable: every
// later next() fails too and nothing more is buffered.
class FrameBuffer {
 public:
  void append(Bytes data);
  Result<std::optional<std::vector<uint8_t>>> next();
  size_t buffered() const { return buf_.size(); }

 private:
  std::vector<uint8_t> buf_;
  bool broken_ = false;
  std::string why_broken_;
};

struct Identity {
  std::vector<uint8_t> key_blob;  // as sent (not parsed: may be a key type touchgate ignores)
  std::string comment;
};

// parse_identities_answer parses a message body that must be IDENTITIES_ANSWER. A FAILURE body
// gives "agent_refused"; any other type, a count over kMaxIdentities, a short or overlong body,
// an empty key blob, or trailing bytes gives "agent_malformed".
Result<std::vector<Identity>> parse_identities_answer(Bytes body);

// parse_sign_response parses a message body that must be SIGN_RESPONSE and returns the signature
// blob inside (not parsed here). FAILURE / EXTENSION_FAILURE give "agent_refused"; anything else
// malformed gives "agent_malformed".
Result<std::vector<uint8_t>> parse_sign_response(Bytes body);

}  // namespace touchgate::ssh::agent
