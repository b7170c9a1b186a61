#include "ssh/validate.h"

namespace touchgate::ssh {}  // namespace touchgate::ssh
