#include "ssh/address.h"

namespace touchgate::ssh {}  // namespace touchgate::ssh
