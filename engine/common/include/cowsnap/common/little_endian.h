// Little-endian integers in on-disk structures, encoded byte by byte so that
// the format never depends on the host's byte order or on struct layout.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <span>

namespace cowsnap::le {

inline uint32_t load32(std::span<const uint8_t> bytes, size_t offset) {
  assert(offset + 4 <= bytes.size());
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v |= uint32_t{bytes[offset + i]} << (8 * i);
  return v;
}

inline uint64_t load64(std::span<const uint8_t> bytes, size_t offset) {
  assert(offset + 8 <= bytes.size());
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v |= uint64_t{bytes[offset + i]} << (8 * i);
  return v;
}

inline void store32(std::span<uint8_t> bytes, size_t offset, uint32_t v) {
  assert(offset + 4 <= bytes.size());
  for (size_t i = 0; i < 4; ++i) bytes[offset + i] = static_cast<uint8_t>(v >> (8 * i));
}

inline void store64(std::span<uint8_t> bytes, size_t offset, uint64_t v) {
  assert(offset + 8 <= bytes.size());
  for (size_t i = 0; i < 8; ++i) bytes[offset + i] = static_cast<uint8_t>(v >> (8 * i));
}

}  // namespace cowsnap::le
