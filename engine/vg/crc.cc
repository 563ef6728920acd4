#include "cowsnap/vg/crc.h"

#include <array>

namespace cowsnap::vg {
namespace {

constexpr std::array<uint32_t, 256> make_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1U) != 0 ? 0xEDB88320U ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}

constexpr std::array<uint32_t, 256> kTable = make_table();

}  // namespace

uint32_t lvm_crc32(std::span<const uint8_t> data, uint32_t crc) {
  for (uint8_t byte : data) crc = kTable[(crc ^ byte) & 0xffU] ^ (crc >> 8);
  return crc;
}

uint32_t lvm_crc32(std::string_view data, uint32_t crc) {
  for (char ch : data) crc = kTable[(crc ^ static_cast<uint8_t>(ch)) & 0xffU] ^ (crc >> 8);
  return crc;
}

}  // namespace cowsnap::vg
