#include "ssh/key.h"

#include <gtest/gtest.h>
