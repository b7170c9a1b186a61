#include "policy/trust.h"

#include <gtest/gtest.h>
