#include <catch2/catch.hpp>

#include <cerrno>
#include <cstdint>
#include <memory>
#include <vector>

#include "cowsnap/io/devices.h"

using cowsnap::CountingDevice;
using cowsnap::MemoryDevice;

TEST_CASE("CountingDevice counts successful operations and their bytes") {
  auto mem = std::make_shared<MemoryDevice>(1 << 20, "mem");
  CountingDevice dev(mem);
  CHECK(dev.describe() == "mem");
  CHECK(dev.size_bytes() == 1 << 20);

  std::vector<uint8_t> buf(4096, 9);
  REQUIRE(dev.write(0, buf).ok());
  REQUIRE(dev.write(8192, std::span(buf).first(100)).ok());
  REQUIRE(dev.read(0, buf).ok());
  REQUIRE(dev.write_zeroes(0, 512).ok());
  REQUIRE(dev.discard(4096, 1024).ok());
  REQUIRE(dev.flush().ok());
  REQUIRE(dev.flush().ok());
  REQUIRE(dev.write_durable(16384, std::span(buf).first(512)).ok());
  // A rejected request moved nothing and is not counted.
  CHECK(dev.write((1 << 20) - 10, buf).errnum() == EINVAL);
  CHECK(dev.read((1 << 20) - 10, buf).errnum() == EINVAL);

  auto c = dev.counters();
  CHECK(c.writes == 3);
  CHECK(c.bytes_written == 4708);
  CHECK(c.durable_writes == 1);
  CHECK(c.reads == 1);
  CHECK(c.bytes_read == 4096);
  CHECK(c.zero_ops == 2);
  CHECK(c.bytes_zeroed == 1536);
  CHECK(c.flushes == 2);

  std::vector<uint8_t> got(512);
  REQUIRE(mem->read(0, got).ok());
  CHECK(got == std::vector<uint8_t>(512, 0));

  dev.reset();
  c = dev.counters();
  CHECK(c.reads + c.bytes_read + c.writes + c.bytes_written + c.zero_ops + c.bytes_zeroed + c.flushes +
            c.durable_writes ==
        0);
}
