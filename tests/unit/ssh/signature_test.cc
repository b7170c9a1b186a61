#include "ssh/signature.h"

#include <gtest/gtest.h>
