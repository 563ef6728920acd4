// Allocation maps (BlockDevice::extents): a file's holes, a memory device's
// unwritten pages and a slice's window, each checked against what the
// device reads.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cowsnap/io/devices.h"
#include "support/system.h"

using namespace cowsnap;
using cowsnap::testing::TempDir;

namespace {

constexpr uint64_t kKiB = 1024;

ExtentMap map_of(BlockDevice& dev, uint64_t offset, uint64_t length) {
  ExtentMap map;
  Status s = dev.extents(offset, length, map);
  INFO(s.message());
  REQUIRE(s.ok());
  REQUIRE(map.length() == length);
  return map;
}

// Every zero run reads as zeroes; returns the data runs as [begin, end).
std::vector<std::pair<uint64_t, uint64_t>> data_runs(BlockDevice& dev, const ExtentMap& map,
                                                     uint64_t offset) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  uint64_t at = offset;
  for (const ExtentMap::Run& run : map.runs()) {
    if (run.zero) {
      std::vector<uint8_t> buf(run.length);
      REQUIRE(dev.read(at, buf).ok());
      CHECK(std::all_of(buf.begin(), buf.end(), [](uint8_t b) { return b == 0; }));
    } else {
      out.emplace_back(at, at + run.length);
    }
    at += run.length;
  }
  return out;
}

bool covered(const std::vector<std::pair<uint64_t, uint64_t>>& runs, uint64_t begin, uint64_t end) {
  return std::any_of(runs.begin(), runs.end(),
                     [&](const auto& r) { return r.first <= begin && end <= r.second; });
}

}  // namespace

TEST_CASE("ExtentMap merges adjacent runs of one kind and drops empty ones", "[extents]") {
  ExtentMap map;
  map.add(10, true);
  map.add(0, false);
  map.add(5, true);
  map.add(7, false);
  ExtentMap tail;
  tail.add(3, false);
  tail.add(4, true);
  map.append(tail);
  REQUIRE(map.runs().size() == 3);
  CHECK(map.runs()[0].length == 15);
  CHECK(map.runs()[0].zero);
  CHECK(map.runs()[1].length == 10);
  CHECK_FALSE(map.runs()[1].zero);
  CHECK(map.runs()[2].length == 4);
  CHECK(map.length() == 29);
  CHECK(map.zero_bytes() == 19);
}

TEST_CASE("FileDevice::extents reports a sparse file's holes, punched holes too", "[extents]") {
  TempDir dir;
  const std::string path = dir / "pv.img";
  auto dev = FileDevice::open(path, {.read_only = false, .create_size_bytes = 4096 * kKiB});
  REQUIRE(dev.ok());
  FileDevice& file = **dev;
  const std::vector<uint8_t> data(64 * kKiB, 0x5A);
  REQUIRE(file.write(1024 * kKiB, data).ok());
  REQUIRE(file.write(3072 * kKiB, data).ok());

  ExtentMap map = map_of(file, 0, file.size_bytes());
  auto runs = data_runs(file, map, 0);
  CHECK(covered(runs, 1024 * kKiB, 1088 * kKiB));
  CHECK(covered(runs, 3072 * kKiB, 3136 * kKiB));
  // File systems allocate in blocks of at most a few KiB: nearly all of it
  // is holes.
  CHECK(map.zero_bytes() >= 4096 * kKiB - 256 * kKiB);
  CHECK(map.runs().front().zero);

  // A window that starts inside data and ends inside a hole.
  ExtentMap part = map_of(file, 1056 * kKiB, 1000 * kKiB);
  CHECK_FALSE(part.runs().front().zero);
  CHECK(part.runs().back().zero);

  // A discard punches a hole, which the map then shows.
  REQUIRE(file.discard(1024 * kKiB, 64 * kKiB).ok());
  ExtentMap after = map_of(file, 1024 * kKiB, 64 * kKiB);
  REQUIRE(after.runs().size() == 1);
  CHECK(after.runs()[0].zero);

  ExtentMap beyond;
  CHECK(file.extents(4000 * kKiB, 200 * kKiB, beyond).errnum() == EINVAL);
}

TEST_CASE("MemoryDevice and SliceDevice extents: unwritten pages are holes", "[extents]") {
  auto mem = std::make_shared<MemoryDevice>(1024 * kKiB);
  REQUIRE(mem->write(128 * kKiB, std::vector<uint8_t>(10, 1)).ok());  // one 64 KiB page
  ExtentMap map = map_of(*mem, 0, mem->size_bytes());
  REQUIRE(map.runs().size() == 3);
  CHECK(map.runs()[0].zero);
  CHECK(map.runs()[0].length == 128 * kKiB);
  CHECK_FALSE(map.runs()[1].zero);
  CHECK(map.runs()[1].length == 64 * kKiB);
  CHECK(data_runs(*mem, map, 0).size() == 1);

  // Zeroing the whole page frees it.
  REQUIRE(mem->write_zeroes(128 * kKiB, 64 * kKiB).ok());
  CHECK(map_of(*mem, 0, mem->size_bytes()).zero_bytes() == mem->size_bytes());

  REQUIRE(mem->write(512 * kKiB, std::vector<uint8_t>(10, 1)).ok());
  SliceDevice slice(mem, 448 * kKiB, 256 * kKiB);
  ExtentMap window = map_of(slice, 0, slice.size_bytes());
  REQUIRE(window.runs().size() == 3);
  CHECK(window.runs()[0].length == 64 * kKiB);
  CHECK_FALSE(window.runs()[1].zero);
}
