#include <catch2/catch.hpp>

#include <cerrno>

#include "cowsnap/dm/mapped_device.h"
#include "cowsnap/io/devices.h"
#include "support/patterns.h"

using namespace cowsnap;
using cowsnap::testing::pattern;

TEST_CASE("mapped device splits requests across linear, zero and error targets") {
  auto pv = std::make_shared<MemoryDevice>(1 << 20, "pv");
  // sectors 0-7 -> pv sectors 100-107; 8-15 zero; 16-23 -> pv sectors 0-7; 24-31 error
  auto dev = MappedDevice::create("vg-lv", {{0, 8, make_linear_target(pv, "7:0", 100, 8)},
                                            {8, 8, make_zero_target(8)},
                                            {16, 8, make_linear_target(pv, "7:0", 0, 8)},
                                            {24, 8, make_error_target(8)}});
  REQUIRE(dev.ok());
  MappedDevice& d = **dev;
  CHECK(d.size_bytes() == 32 * 512);
  CHECK(d.table_text() ==
        "0 8 linear 7:0 100\n"
        "8 8 zero \n"
        "16 8 linear 7:0 0\n"
        "24 8 error \n");
  // dmsetup prints "start length type " and then the target's status, so a
  // target with no status line keeps the blank after its type.
  CHECK(d.status_text() ==
        "0 8 linear \n"
        "8 8 zero \n"
        "16 8 linear \n"
        "24 8 error \n");

  const auto data = pattern(0, 24 * 512, 1);
  REQUIRE(d.write(0, data).ok());  // swallowed by the zero target in the middle
  std::vector<uint8_t> back(24 * 512);
  REQUIRE(d.read(0, back).ok());
  CHECK(std::equal(back.begin(), back.begin() + 4096, data.begin()));
  CHECK(std::all_of(back.begin() + 4096, back.begin() + 8192, [](uint8_t b) { return b == 0; }));
  CHECK(std::equal(back.begin() + 8192, back.end(), data.begin() + 8192));

  std::vector<uint8_t> raw(4096);
  REQUIRE(pv->read(100 * 512, raw).ok());
  CHECK(std::equal(raw.begin(), raw.end(), data.begin()));
  REQUIRE(pv->read(0, raw).ok());
  CHECK(std::equal(raw.begin(), raw.end(), data.begin() + 8192));

  std::vector<uint8_t> tail(1024);
  CHECK(d.read(23 * 512, tail).errnum() == EIO);
  CHECK(d.read(32 * 512, std::span(tail).first(1)).errnum() == EINVAL);
}

TEST_CASE("mapped device refuses tables with gaps or wrong lengths") {
  auto pv = std::make_shared<MemoryDevice>(1 << 20, "pv");
  auto gap = MappedDevice::create("g", {{0, 8, make_zero_target(8)}, {16, 8, make_zero_target(8)}});
  REQUIRE_FALSE(gap.ok());
  CHECK(gap.status().errnum() == EINVAL);
  CHECK_THAT(gap.status().message(), Catch::Contains("gap or overlap at sector 8"));
  auto wrong = MappedDevice::create("w", {{0, 16, make_zero_target(8)}});
  CHECK(wrong.status().errnum() == EINVAL);
  CHECK(MappedDevice::create("e", {}).status().errnum() == EINVAL);
}

TEST_CASE("mapped device: a durable gather write is cut at target boundaries, its pieces inside them") {
  auto pv = std::make_shared<FaultyDevice>(std::make_shared<MemoryDevice>(1 << 20, "pv"));
  // sectors 0-7 -> pv sectors 100-107; 8-15 -> pv sectors 0-7
  auto dev = MappedDevice::create(
      "vg-cow", {{0, 8, make_linear_target(pv, "7:0", 100, 8)}, {8, 8, make_linear_target(pv, "7:0", 0, 8)}});
  REQUIRE(dev.ok());
  const auto a = pattern(0, 3000, 1);
  const auto b = pattern(0, 2000, 2);
  const auto c = pattern(0, 1000, 3);
  const std::span<const uint8_t> pieces[] = {a, b, c};
  REQUIRE((*dev)->write_gather_durable(2048, pieces).ok());  // 2048 + 6000 crosses 4096
  pv->power_cut();                                           // no flush came: only durable writes survive
  std::vector<uint8_t> expected(a);
  expected.insert(expected.end(), b.begin(), b.end());
  expected.insert(expected.end(), c.begin(), c.end());
  std::vector<uint8_t> first(2048), second(6000 - 2048);
  REQUIRE(pv->target()->read(100 * 512 + 2048, first).ok());
  REQUIRE(pv->target()->read(0, second).ok());
  CHECK(std::equal(first.begin(), first.end(), expected.begin()));
  CHECK(std::equal(second.begin(), second.end(), expected.begin() + 2048));
  CHECK((*dev)->write_gather_durable(8192 - 10, pieces).errnum() == EINVAL);
}
