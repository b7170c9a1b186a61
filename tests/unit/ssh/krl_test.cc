#include "ssh/krl.h"

#include <gtest/gtest.h>
