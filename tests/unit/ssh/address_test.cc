#include "ssh/address.h"

#include <gtest/gtest.h>
