#include "policy/engine.h"

namespace touchgate::policy {

struct Policy::Compiled {};

Policy::Policy(std::shared_ptr<const Config> config, std::unique_ptr<const Compiled> compiled)
    : config_(std::move(config)), compiled_(std::move(compiled)) {}
Policy::~Policy() = default;

std::shared_ptr<const Policy> Policy::compile(std::shared_ptr<const Config> config) {
  return std::make_shared<const Policy>(std::move(config), std::make_unique<const Compiled>());
}

ResolvedIdentity Policy::resolve(Identity identity) const {
  ResolvedIdentity r;
  r.identity = std::move(identity);
  return r;
}

Decision Policy::decide(const ResolvedIdentity&, const Request&, bool) const {
  Decision d;
  d.code = "policy_no_match";
  d.explanation = "no rule allows this (deny by default)";
  return d;
}

}  // namespace touchgate::policy
