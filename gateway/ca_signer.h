// The CA key of terminating mode, opened again when it was not there at start.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "pkcs11/open.h"
#include "ssh/error.h"
#include "ssh/signer.h"

namespace touchgate::gateway {

// RetryingCaSigner wraps pkcs11::open_ca_signer. When the key could not be opened because the
// token (or its PIN file) was not there, ready() tries again, at most once per kRetryInterval,
// so that a token plugged in after the gateway started serves terminating mode without a
// restart. A refused login is never retried by itself (each wrong PIN counts towards the
// token's lockout); nor are configuration errors. Once open, the inner signer handles a token
// that goes and comes back (TokenSigner). Thread-safe; used on the offload thread.
class RetryingCaSigner final : public ssh::Signer {
 public:
  static constexpr std::chrono::seconds kRetryInterval{5};

  // open makes the first attempt; `first` receives its error (empty code when it worked).
  static std::unique_ptr<RetryingCaSigner> open(pkcs11::CaKeyConfig config, Error* first);

  // retryable: whether an open error may go away by itself (token or PIN file not there yet).
  static bool retryable(const std::string& code);

  Result<void> ready() override;
  bool is_open() const override;
  const std::vector<uint8_t>& public_key() const override;
  Result<std::vector<uint8_t>> sign(std::span<const uint8_t> data) override;
  std::string describe() const override;

 private:
  explicit RetryingCaSigner(pkcs11::CaKeyConfig config) : config_(std::move(config)) {}
  Result<void> attempt();  // mutex_ held

  pkcs11::CaKeyConfig config_;
  mutable std::mutex mutex_;
  std::unique_ptr<ssh::Signer> inner_;
  Error last_error_;
  std::chrono::steady_clock::time_point last_attempt_{};
};

}  // namespace touchgate::gateway
