// Fuzz target: agent frames and answers (trust boundary: the client's forwarded agent). The input
// is fed to a FrameBuffer in chunks whose sizes come from the input itself; every body it yields,
// and the input as a body, goes through both answer parsers. Seed corpus: corpus/agent/ (frames a
// real ssh-agent sent, from tests/data/touch/generate.sh). Invariants violated abort.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "ssh/agent.h"
#include "ssh/key.h"
#include "ssh/writer.h"

namespace {

using namespace touchgate::ssh;

void check_body(Bytes body) {
  if (auto ids = agent::parse_identities_answer(body)) {
    if (ids->size() > agent::kMaxIdentities) __builtin_trap();
    // An accepted answer is canonical: encoding it again gives the same bytes.
    Writer w;
    w.u8(agent::kIdentitiesAnswer).u32(static_cast<uint32_t>(ids->size()));
    for (const auto& id : *ids) {
      if (id.key_blob.empty()) __builtin_trap();
      w.string(std::span<const uint8_t>(id.key_blob)).string(id.comment);
      (void)parse_public_key(id.key_blob);
    }
    if (!std::equal(w.bytes().begin(), w.bytes().end(), body.begin(), body.end())) __builtin_trap();
  }
  if (auto sig = agent::parse_sign_response(body)) {
    if (sig->empty() || sig->size() + 5 != body.size()) __builtin_trap();
    if (!std::equal(sig->begin(), sig->end(), body.begin() + 5)) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Bytes input(data, size);
  check_body(input);

  agent::FrameBuffer frames;
  size_t pos = 0;
  size_t step = 0;
  bool broken = false;
  while (pos < size && !broken) {
    const size_t chunk = std::min<size_t>(size - pos, 1 + data[step++ % size] * 3);
    frames.append(input.subspan(pos, chunk));
    pos += chunk;
    if (frames.buffered() > agent::kMaxFrame + 4) __builtin_trap();
    for (;;) {
      auto body = frames.next();
      if (!body) {
        broken = true;
        break;
      }
      if (!body->has_value()) break;
      const auto& b = **body;
      if (b.empty() || b.size() > agent::kMaxFrame) __builtin_trap();
      check_body(b);
    }
  }
  if (broken) {
    // A broken stream stays broken and stores nothing.
    frames.append(input);
    if (frames.buffered() != 0 || frames.next()) __builtin_trap();
  }

  // Requests built around the input come back out of a FrameBuffer unchanged.
  const auto request = agent::encode_sign_request(input.first(size / 2), input, 0x06);
  agent::FrameBuffer echo;
  echo.append(request);
  auto body = echo.next();
  if (request.size() - 4 <= agent::kMaxFrame) {
    if (!body || !body->has_value() || (*body)->size() + 4 != request.size()) __builtin_trap();
    if (!std::equal((*body)->begin(), (*body)->end(), request.begin() + 4)) __builtin_trap();
  }
  return 0;
}
