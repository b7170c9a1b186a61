// Fuzz target: control socket requests (trust boundary: a local peer of touchgated's control
// socket). Every input goes through parse_request; an accepted request is within its limits and
// encodes to a line that parses to the same request; the reply formatters keep any text on one
// line. Seed corpus: corpus/control_request/ (every verb, and refusals). Invariants violated abort.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "gateway/control_protocol.h"

using namespace touchgate;
using namespace touchgate::gateway;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto request = parse_request(input);
  if (request) {
    if (size > kMaxControlRequest || input.back() != '\n') __builtin_trap();
    // Canonical up to leading zeros of a connection id: its encoding parses to the same request.
    const std::string encoded = encode_request(*request);
    auto again = parse_request(encoded);
    if (!again || again->verb != request->verb || again->connection_id != request->connection_id ||
        again->principal != request->principal || again->channel != request->channel ||
        encoded.size() > size) {
      __builtin_trap();
    }
    if (request->verb == ControlVerb::kSessionsKill && request->channel == 0 &&
        input.find('/') != std::string_view::npos) {
      __builtin_trap();  // "ID/0" is refused
    }
    if (request->verb == ControlVerb::kSessionsKillUser &&
        (request->principal.empty() || request->principal.size() > 256)) {
      __builtin_trap();
    }
  } else {
    if (request.error().code != "control_bad_request" &&
        request.error().code != "control_request_too_long") {
      __builtin_trap();
    }
    // The refusal goes back as one line, whatever the request held.
    const std::string line = format_error(request.error());
    if (line.find('\n') != line.size() - 1) __builtin_trap();
  }

  // Reply text built from the input: one line each, and the status line parses back.
  const std::string error = format_error(Error{"x", std::string(input)});
  if (error.find('\n') != error.size() - 1) __builtin_trap();
  auto status = parse_status(std::string_view(error).substr(0, error.size() - 1));
  if (status || status.error().code != "x") __builtin_trap();
  const std::string finding = format_finding_line("warning", input);
  if (finding.find('\n') != finding.size() - 1) __builtin_trap();
  SessionInfo s;
  s.user = std::string(input);
  s.key_fp = std::string(input);
  s.channels.push_back(
      ChannelInfo{1, std::string(input), std::string(input), 0, 1, 2, std::string(input)});
  const std::string json = format_session(s);
  if (json.find('\n') != json.size() - 1) __builtin_trap();
  for (char c : json) {
    if (static_cast<unsigned char>(c) < 0x20 && c != '\n') __builtin_trap();
  }
  return 0;
}
