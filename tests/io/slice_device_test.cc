#include <catch2/catch.hpp>

#include <cerrno>
#include <cstdint>
#include <memory>
#include <vector>

#include "cowsnap/io/devices.h"

using cowsnap::MemoryDevice;
using cowsnap::SliceDevice;

TEST_CASE("SliceDevice maps its offsets onto the base device") {
  auto base = std::make_shared<MemoryDevice>(10000, "mem");
  SliceDevice slice(base, 1000, 3000);
  CHECK(slice.size_bytes() == 3000);
  CHECK(slice.base_offset() == 1000);
  CHECK(slice.base() == base);
  CHECK(slice.describe() == "mem [1000+3000]");

  const std::vector<uint8_t> data{1, 2, 3, 4};
  REQUIRE(slice.write(0, data).ok());
  REQUIRE(slice.write(2996, data).ok());
  std::vector<uint8_t> got(4);
  REQUIRE(base->read(1000, got).ok());
  CHECK(got == data);
  REQUIRE(base->read(3996, got).ok());
  CHECK(got == data);
  REQUIRE(slice.read(2996, got).ok());
  CHECK(got == data);

  REQUIRE(slice.write_zeroes(2998, 2).ok());
  REQUIRE(base->read(3996, got).ok());
  CHECK(got == std::vector<uint8_t>{1, 2, 0, 0});
  REQUIRE(slice.discard(0, 2).ok());
  REQUIRE(base->read(1000, got).ok());
  CHECK(got == std::vector<uint8_t>{0, 0, 3, 4});
  CHECK(slice.flush().ok());
}

TEST_CASE("SliceDevice stops requests at its own end, not the base's") {
  auto base = std::make_shared<MemoryDevice>(10000, "mem");
  SliceDevice slice(base, 1000, 3000);
  const std::vector<uint8_t> data(8, 0xFF);
  auto st = slice.write(2996, data);
  CHECK(st.errnum() == EINVAL);
  CHECK(st.message().find("mem [1000+3000]") != std::string::npos);
  std::vector<uint8_t> buf(8);
  CHECK(slice.read(2993, buf).errnum() == EINVAL);
  CHECK(slice.write_zeroes(3000, 1).errnum() == EINVAL);
  CHECK(slice.discard(2999, 2).errnum() == EINVAL);
  // The base beyond the slice is untouched.
  REQUIRE(base->read(3996, buf).ok());
  CHECK(buf == std::vector<uint8_t>(8, 0));
}
