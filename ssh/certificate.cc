#include "ssh/certificate.h"

namespace touchgate::ssh {}  // namespace touchgate::ssh
