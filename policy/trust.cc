#include "policy/trust.h"

namespace touchgate::policy {}  // namespace touchgate::policy
