#include "ssh/signature.h"

namespace touchgate::ssh {}  // namespace touchgate::ssh
