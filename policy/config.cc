#include "policy/config.h"

namespace touchgate::policy {}  // namespace touchgate::policy
