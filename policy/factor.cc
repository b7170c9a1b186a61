#include "policy/factor.h"

#include <array>

namespace touchgate::policy {

namespace {

struct Named {
  uint8_t bit;
  std::string_view name;
};

constexpr std::array<Named, 4> kActions{{
    {static_cast<uint8_t>(Action::kJump), "jump"},
    {static_cast<uint8_t>(Action::kShell), "shell"},
    {static_cast<uint8_t>(Action::kExec), "exec"},
    {static_cast<uint8_t>(Action::kSftp), "sftp"},
}};

// Weakest first.
constexpr std::array<Named, 5> kFactors{{
    {static_cast<uint8_t>(Factor::kTouch), "touch"},
    {static_cast<uint8_t>(Factor::kPiv), "piv"},
    {static_cast<uint8_t>(Factor::kTouchPin), "touch+pin"},
    {static_cast<uint8_t>(Factor::kPivAttestedTouch), "piv-attested-touch"},
    {static_cast<uint8_t>(Factor::kFido2Attested), "fido2-attested"},
}};

template <size_t N>
std::string join(const std::array<Named, N>& table, uint8_t mask, std::string_view sep) {
  std::string out;
  for (const auto& n : table) {
    if ((mask & n.bit) == 0) continue;
    if (!out.empty()) out += sep;
    out += n.name;
  }
  return out;
}

}  // namespace

std::optional<Action> parse_action(std::string_view name) {
  for (const auto& n : kActions) {
    if (n.name == name) return static_cast<Action>(n.bit);
  }
  return std::nullopt;
}

std::string_view action_name(Action a) {
  for (const auto& n : kActions) {
    if (n.bit == static_cast<uint8_t>(a)) return n.name;
  }
  return "?";
}

std::string action_names(uint8_t mask) { return join(kActions, mask, ", "); }

std::optional<Factor> parse_factor(std::string_view name) {
  for (const auto& n : kFactors) {
    if (n.name == name) return static_cast<Factor>(n.bit);
  }
  return std::nullopt;
}

std::string_view factor_name(Factor f) {
  for (const auto& n : kFactors) {
    if (n.bit == static_cast<uint8_t>(f)) return n.name;
  }
  return "?";
}

std::string factor_names(uint8_t mask) {
  std::string out = join(kFactors, mask, " or ");
  return out.empty() ? "none" : out;
}

uint8_t satisfied_factors(const ProvenFactor& p) {
  uint8_t m = 0;
  if (p.fido2) {
    if (!p.user_presence) return 0;  // a FIDO2 signature without touch proves nothing here
    m |= static_cast<uint8_t>(Factor::kTouch);
    if (p.user_verification) m |= static_cast<uint8_t>(Factor::kTouchPin);
    if (p.attested) m |= static_cast<uint8_t>(Factor::kFido2Attested);
  } else {
    m |= static_cast<uint8_t>(Factor::kTouch) | static_cast<uint8_t>(Factor::kPiv);
    if (p.attested) m |= static_cast<uint8_t>(Factor::kPivAttestedTouch);
  }
  return m;
}

std::string_view strongest_factor(const ProvenFactor& p) {
  uint8_t m = satisfied_factors(p);
  std::string_view best = "none";
  for (const auto& n : kFactors) {
    if (m & n.bit) best = n.name;
  }
  return best;
}

Reuse reuse_touch(uint8_t proven, std::chrono::steady_clock::duration age, uint8_t wanted,
                  std::chrono::seconds max_age) {
  if (proven == 0 || max_age.count() <= 0 || age < std::chrono::steady_clock::duration::zero() ||
      age > max_age) {
    return Reuse::kFresh;
  }
  if (wanted == 0) wanted = kAllFactors;
  return (proven & wanted) != 0 ? Reuse::kReuse : Reuse::kStepUp;
}

}  // namespace touchgate::policy
