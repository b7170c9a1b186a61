#include "gateway/ca_signer.h"

#include <fmt/format.h>

#include "gateway/log.h"

namespace touchgate::gateway {

std::unique_ptr<RetryingCaSigner> RetryingCaSigner::open(pkcs11::CaKeyConfig config, Error* first) {
  std::unique_ptr<RetryingCaSigner> s(new RetryingCaSigner(std::move(config)));
  std::lock_guard lk(s->mutex_);
  auto r = s->attempt();
  *first = r ? Error{} : r.error();
  return s;
}

bool RetryingCaSigner::retryable(const std::string& code) {
  return code == "pkcs11_token_missing" || code == "pkcs11_token_not_found" ||
         code == "pkcs11_key_not_found" || code == "pkcs11_pin_file";
}

Result<void> RetryingCaSigner::attempt() {
  last_attempt_ = std::chrono::steady_clock::now();
  auto signer = pkcs11::open_ca_signer(config_);
  if (!signer) {
    last_error_ = signer.error();
    return tl::unexpected(last_error_);
  }
  inner_ = std::move(*signer);
  return {};
}

Result<void> RetryingCaSigner::ready() {
  std::lock_guard lk(mutex_);
  if (inner_) return {};
  if (!retryable(last_error_.code) ||
      std::chrono::steady_clock::now() - last_attempt_ < kRetryInterval)
    return tl::unexpected(last_error_);
  if (auto r = attempt(); !r) return r;
  log_event(Level::kInfo, "ca_ready", {{"key", inner_->describe()}, {"note", "opened on retry"}});
  return {};
}

bool RetryingCaSigner::is_open() const {
  std::lock_guard lk(mutex_);
  return inner_ != nullptr;
}

const std::vector<uint8_t>& RetryingCaSigner::public_key() const {
  static const std::vector<uint8_t> kNone;
  std::lock_guard lk(mutex_);
  return inner_ ? inner_->public_key() : kNone;
}

Result<std::vector<uint8_t>> RetryingCaSigner::sign(std::span<const uint8_t> data) {
  ssh::Signer* inner = nullptr;
  {
    std::lock_guard lk(mutex_);
    if (!inner_) return tl::unexpected(last_error_);
    inner = inner_.get();  // never replaced once set
  }
  return inner->sign(data);
}

std::string RetryingCaSigner::describe() const {
  std::lock_guard lk(mutex_);
  if (inner_) return inner_->describe();
  return config_.pkcs11_uri.empty() ? config_.key_file.string() : config_.pkcs11_uri;
}

}  // namespace touchgate::gateway
