// Bytes from hex text, for tests that compare with on-disk bytes copied
// from a hex dump.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cowsnap::testing {

// "4c41" -> {0x4c, 0x41}; a trailing odd digit is ignored.
inline std::vector<uint8_t> from_hex(std::string_view hex) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<uint8_t>(std::stoul(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

}  // namespace cowsnap::testing
