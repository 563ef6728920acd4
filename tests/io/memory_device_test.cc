#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <vector>

#include "cowsnap/io/devices.h"

using cowsnap::MemoryDevice;

namespace {

constexpr uint64_t kPage = 64 * 1024;

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7);
  return v;
}

}  // namespace

TEST_CASE("MemoryDevice reads zeroes where nothing was written") {
  MemoryDevice dev(3 * kPage + 100, "mem0");
  CHECK(dev.size_bytes() == 3 * kPage + 100);
  std::vector<uint8_t> buf(dev.size_bytes(), 0xAA);
  REQUIRE(dev.read(0, buf).ok());
  CHECK(std::all_of(buf.begin(), buf.end(), [](uint8_t b) { return b == 0; }));
  CHECK(dev.describe() == "mem0");
}

TEST_CASE("MemoryDevice round-trips a write crossing page boundaries") {
  MemoryDevice dev(4 * kPage);
  const auto data = pattern(2 * kPage + 333, 5);
  const uint64_t off = kPage - 17;
  REQUIRE(dev.write(off, data).ok());
  std::vector<uint8_t> back(data.size());
  REQUIRE(dev.read(off, back).ok());
  CHECK(back == data);
  // Bytes just outside the write stay zero.
  std::vector<uint8_t> edge(1);
  REQUIRE(dev.read(off - 1, edge).ok());
  CHECK(edge[0] == 0);
  REQUIRE(dev.read(off + data.size(), edge).ok());
  CHECK(edge[0] == 0);
}

TEST_CASE("MemoryDevice write_zeroes zeroes partial and whole pages") {
  MemoryDevice dev(3 * kPage + 10);
  const auto data = pattern(dev.size_bytes(), 1);
  REQUIRE(dev.write(0, data).ok());
  const uint64_t off = kPage / 2;
  const uint64_t len = 2 * kPage + 20;  // partial, whole, partial
  REQUIRE(dev.write_zeroes(off, len).ok());
  std::vector<uint8_t> back(dev.size_bytes());
  REQUIRE(dev.read(0, back).ok());
  for (uint64_t i = 0; i < back.size(); ++i) {
    const bool zeroed = i >= off && i < off + len;
    if (back[i] != (zeroed ? 0 : data[i])) FAIL("byte " << i << " wrong");
  }
  // Zeroing the short last page to the device's end, then writing there again.
  REQUIRE(dev.write_zeroes(3 * kPage, 10).ok());
  REQUIRE(dev.write(3 * kPage + 9, std::vector<uint8_t>{7}).ok());
  std::vector<uint8_t> tail(10);
  REQUIRE(dev.read(3 * kPage, tail).ok());
  CHECK(tail == std::vector<uint8_t>{0, 0, 0, 0, 0, 0, 0, 0, 0, 7});
  CHECK(dev.discard(0, dev.size_bytes()).ok());
  REQUIRE(dev.read(0, back).ok());
  CHECK(std::all_of(back.begin(), back.end(), [](uint8_t b) { return b == 0; }));
}

TEST_CASE("MemoryDevice rejects out-of-range requests with EINVAL") {
  MemoryDevice dev(1000, "mem1");
  std::vector<uint8_t> buf(10);
  auto st = dev.read(995, buf);
  CHECK(st.errnum() == EINVAL);
  CHECK(st.message().find("mem1") != std::string::npos);
  CHECK(dev.write(991, buf).errnum() == EINVAL);
  CHECK(dev.write_zeroes(UINT64_MAX, 2).errnum() == EINVAL);
  CHECK(dev.write(990, buf).ok());
}
