#include "ssh/validate.h"

#include <gtest/gtest.h>
