#include "policy/config.h"

#include <gtest/gtest.h>
