// Error values shared by every touchgate library.
//
// An Error carries a stable machine-readable reason code (used in logs, the audit log and as the
// suffix of the message a user sees) and a human sentence. Codes are lower_snake_case and never
// change meaning once released: tooling greps for them.
#pragma once

#include <string>
#include <utility>

#include <tl/expected.hpp>

namespace touchgate {

struct Error {
  std::string code;     // stable reason code, e.g. "cert_expired"
  std::string message;  // one human sentence, e.g. "certificate expired at 2026-01-01T00:00:00Z"
};

template <class T>
using Result = tl::expected<T, Error>;

// fail returns an unexpected Error, for `return fail("code", "message");`.
inline tl::unexpected<Error> fail(std::string code, std::string message) {
  return tl::unexpected<Error>(Error{std::move(code), std::move(message)});
}

}  // namespace touchgate
