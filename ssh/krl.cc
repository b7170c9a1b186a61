#include "ssh/krl.h"

namespace touchgate::ssh {}  // namespace touchgate::ssh
