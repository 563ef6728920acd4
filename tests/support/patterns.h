// Recognisable block contents for snapshot tests: every 512-byte sector
// says which sector it is and which generation wrote it, so a wrong read
// names what it got.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

namespace cowsnap::testing {

inline void fill_pattern(std::span<uint8_t> buf, uint64_t device_offset, uint32_t generation) {
  for (size_t i = 0; i < buf.size(); ++i) {
    const uint64_t at = device_offset + i;
    const uint64_t sector = at / 512;
    const uint64_t word = (sector * 0x9E3779B97F4A7C15ULL) ^ (uint64_t{generation} << 32) ^ (at % 512 / 8);
    buf[i] = static_cast<uint8_t>(word >> ((at % 8) * 8));
  }
}

inline std::vector<uint8_t> pattern(uint64_t device_offset, size_t length, uint32_t generation) {
  std::vector<uint8_t> v(length);
  fill_pattern(v, device_offset, generation);
  return v;
}

// The generation that wrote the sector at `device_offset`, or -1 when the
// bytes match no generation up to `max_generation`.
inline int64_t generation_of(std::span<const uint8_t> sector, uint64_t device_offset,
                             uint32_t max_generation) {
  std::vector<uint8_t> expect(sector.size());
  for (uint32_t g = 0; g <= max_generation; ++g) {
    fill_pattern(expect, device_offset, g);
    if (std::memcmp(expect.data(), sector.data(), sector.size()) == 0) return g;
  }
  return -1;
}

}  // namespace cowsnap::testing

namespace cowsnap::testing {

// "" when equal, else where they first differ: a failure message that does
// not print megabytes.
inline std::string byte_diff(std::span<const uint8_t> got, std::span<const uint8_t> want) {
  if (got.size() != want.size()) {
    return "sizes differ: " + std::to_string(got.size()) + " vs " + std::to_string(want.size());
  }
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i] != want[i]) {
      return "first difference at byte " + std::to_string(i) + ": got " + std::to_string(got[i]) + ", want " +
             std::to_string(want[i]);
    }
  }
  return {};
}

}  // namespace cowsnap::testing
