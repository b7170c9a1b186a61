#include "ssh/key.h"

namespace touchgate::ssh {}  // namespace touchgate::ssh
