// lvm2's CRC-32: the checksum of the label, the mda_header and the metadata
// text. Reflected polynomial 0xEDB88320 like zlib's crc32, but seeded with
// 0xf597a6cf and with no final inversion, so zlib's values do not match.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace cowsnap::vg {

inline constexpr uint32_t kLvmCrcInitial = 0xf597a6cfU;

// The CRC of `data` continued from `crc`: feeding a buffer in pieces gives
// the same value as feeding it whole (lvm2 checksums a wrapped metadata text
// that way). Thread-safe: the table is a constant.
uint32_t lvm_crc32(std::span<const uint8_t> data, uint32_t crc = kLvmCrcInitial);
uint32_t lvm_crc32(std::string_view data, uint32_t crc = kLvmCrcInitial);

}  // namespace cowsnap::vg
