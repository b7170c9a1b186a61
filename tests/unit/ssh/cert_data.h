// Access to the certificate test data made by tests/data/certs/generate.sh (real ssh-keygen).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "ssh/key.h"

namespace touchgate::ssh::testdata {

inline const std::string kCertDir = std::string(TOUCHGATE_TEST_DATA) + "/certs/";

inline std::string read_text(const std::string& name) {
  std::ifstream in(kCertDir + name, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// read_blob decodes the one key or certificate line of a .pub file.
inline std::vector<uint8_t> read_blob(const std::string& name) {
  auto line = parse_key_line(read_text(name));
  EXPECT_TRUE(line.has_value()) << name << ": " << (line ? "" : line.error().message);
  return line ? line->blob : std::vector<uint8_t>{};
}

// fingerprints is the `ssh-keygen -lf` output recorded by generate.sh: file name -> fingerprint.
inline std::map<std::string, std::string> fingerprints() {
  std::map<std::string, std::string> out;
  std::istringstream in(read_text("fingerprints.txt"));
  std::string file;
  std::string fp;
  while (in >> file >> fp) out[file] = fp;
  return out;
}

}  // namespace touchgate::ssh::testdata
