#include "cowsnap/vg/crc.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "cowsnap/vg/lvm_id.h"
#include "support/hex.h"

namespace cowsnap::vg {
namespace {

using ::cowsnap::testing::from_hex;

TEST_CASE("lvm_crc32 known values", "[vg][crc]") {
  CHECK(lvm_crc32(std::string_view("")) == 0xf597a6cfU);
  CHECK(lvm_crc32(std::string_view("123456789")) == 0x4991cf02U);
  CHECK(lvm_crc32(std::string_view("LVM2")) == 0x34ff1083U);
  // Feeding in pieces equals feeding whole.
  CHECK(lvm_crc32(std::string_view("56789"), lvm_crc32(std::string_view("1234"))) == 0x4991cf02U);
}

TEST_CASE("lvm_crc32 matches a label sector written by lvm2 2.03.16 pvcreate", "[vg][crc]") {
  // Sector 1 of a PV made by lvm2 (bytes after 0xa0 are zero); the label
  // stores the CRC of bytes 20..511 at offset 16: 0x6b7ea24a.
  std::vector<uint8_t> sector = from_hex(
      "4c4142454c4f4e4501000000000000004aa27e6b200000004c564d3220303031495030626b365436326f593230534233"
      "33474c3648446a35454e6b65496650740000109e01000000000010000000000000000000000000000000000000000000"
      "0000000000000000001000000000000000f00f0000000000000000000000000000000000000000000200000001000000"
      "00000000000000000000000000000000");
  sector.resize(512, 0);
  CHECK(lvm_crc32(std::span<const uint8_t>(sector).subspan(20)) == 0x6b7ea24aU);
}

TEST_CASE("lvm ids: format, parse, generate", "[vg][id]") {
  const std::string raw = "IP0bk6T62oY20SB33GL6HDj5ENkeIfPt";
  CHECK(format_lvm_id(raw) == "IP0bk6-T62o-Y20S-B33G-L6HD-j5EN-keIfPt");
  CHECK(parse_lvm_id("IP0bk6-T62o-Y20S-B33G-L6HD-j5EN-keIfPt").value() == raw);
  CHECK(parse_lvm_id(raw).value() == raw);
  CHECK(parse_lvm_id("short").status().errnum() == EINVAL);
  CHECK(parse_lvm_id("IP0bk6-T62o-Y20S-B33G-L6HD-j5EN-keIf?t").status().errnum() == EINVAL);
  const std::string a = new_lvm_id();
  const std::string b = new_lvm_id();
  CHECK(a.size() == 32);
  CHECK(a != b);
  CHECK(parse_lvm_id(format_lvm_id(a)).value() == a);
}

}  // namespace
}  // namespace cowsnap::vg
