#include "ssh/certificate.h"

#include <gtest/gtest.h>
