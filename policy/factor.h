// Actions a rule allows and the second-factor strengths it may require (touchgate-policy(5)).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace touchgate::policy {

// Actions, as bits of a mask. jump = a ProxyJump (direct-tcpip) channel; shell, exec and sftp
// are the terminating mode's requests.
enum class Action : uint8_t { kJump = 1, kShell = 2, kExec = 4, kSftp = 8 };
inline constexpr uint8_t kAllActions = 0x0f;
std::optional<Action> parse_action(std::string_view name);  // "jump" ...
std::string_view action_name(Action a);
std::string action_names(uint8_t mask);  // "jump, exec"

// Factors, weakest first (the order `policy` output and "strongest" use):
//   touch              any enrolled hardware key: FIDO2 with user presence, or PIV
//   piv                a PIV key (smart card)
//   touch+pin          FIDO2 with user presence and user verification (PIN)
//   piv-attested-touch a PIV key whose touch policy was proven by attestation at enrollment
//   fido2-attested     a FIDO2 key whose attestation was verified at enrollment
enum class Factor : uint8_t {
  kTouch = 1,
  kPiv = 2,
  kTouchPin = 4,
  kPivAttestedTouch = 8,
  kFido2Attested = 16,
};
inline constexpr uint8_t kAllFactors = 0x1f;
std::optional<Factor> parse_factor(std::string_view name);  // "touch", "touch+pin", ...
std::string_view factor_name(Factor f);
// factor_names renders a mask as the alternatives it accepts: "piv or touch+pin" (weakest first).
std::string factor_names(uint8_t mask);

// What one verified touch proved (filled in by the gateway from its VerifiedTouch and the key's
// enrollment record).
struct ProvenFactor {
  bool fido2 = false;              // FIDO2 security key (else PIV)
  bool user_presence = false;      // FIDO2 UP flag
  bool user_verification = false;  // FIDO2 UV flag (PIN or biometric)
  bool attested = false;           // attestation verified at enrollment (touch policy for PIV)
};

// satisfied_factors is the mask of factors the touch meets.
uint8_t satisfied_factors(const ProvenFactor& p);

// strongest_factor names the strongest factor the touch meets ("touch+pin"), for logs and
// `sessions list`; "none" when it meets none.
std::string_view strongest_factor(const ProvenFactor& p);

// Freshness: may a touch already made on this connection authorize a new channel?
enum class Reuse : uint8_t {
  kReuse,   // sufficient and fresh: no new touch
  kFresh,   // no usable earlier touch (none, too old, or the rule wants a touch per channel)
  kStepUp,  // a fresh touch exists but proves too little for this rule: ask for a stronger one
};
// reuse_touch: proven = the earlier touch's factors (0 = none), age = how long ago it was made,
// wanted = the rule's acceptable factors (0 = any), max_age = the rule's freshness.
Reuse reuse_touch(uint8_t proven, std::chrono::steady_clock::duration age, uint8_t wanted,
                  std::chrono::seconds max_age);

}  // namespace touchgate::policy
