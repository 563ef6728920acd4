#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "cowsnap/io/devices.h"
#include "support/system.h"

using cowsnap::FileDevice;
using cowsnap::testing::TempDir;

namespace {

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 13);
  return v;
}

bool all_zero(const std::vector<uint8_t>& v) {
  return std::all_of(v.begin(), v.end(), [](uint8_t b) { return b == 0; });
}

bool mentions(const cowsnap::Status& st, const std::string& text) {
  return st.message().find(text) != std::string::npos;
}

struct stat stat_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st;
}

constexpr uint64_t kMiB = 1024 * 1024;

}  // namespace

TEST_CASE("FileDevice creates a missing file sparse with the requested size") {
  TempDir dir;
  const std::string path = dir / "pv0.img";
  auto dev = FileDevice::open(path, {.read_only = false, .create_size_bytes = 64 * kMiB});
  REQUIRE(dev.ok());
  CHECK((*dev)->size_bytes() == 64 * kMiB);
  CHECK((*dev)->path() == path);
  CHECK((*dev)->describe() == "file " + path);
  CHECK_FALSE((*dev)->is_block_device());
  const struct stat st = stat_of(path);
  CHECK(static_cast<uint64_t>(st.st_size) == 64 * kMiB);
  CHECK(st.st_blocks == 0);  // sparse: nothing allocated yet
  std::vector<uint8_t> buf(4096, 0xEE);
  REQUIRE((*dev)->read(32 * kMiB, buf).ok());
  CHECK(all_zero(buf));
}

TEST_CASE("FileDevice keeps an existing file's size and data when a create size is given") {
  TempDir dir;
  const std::string path = dir / "existing.img";
  { std::ofstream(path, std::ios::binary) << std::string(10000, 'x'); }
  auto dev = FileDevice::open(path, {.read_only = false, .create_size_bytes = kMiB});
  REQUIRE(dev.ok());
  CHECK((*dev)->size_bytes() == 10000);
  std::vector<uint8_t> buf(3);
  REQUIRE((*dev)->read(9997, buf).ok());
  CHECK(buf == std::vector<uint8_t>{'x', 'x', 'x'});
}

TEST_CASE("FileDevice round-trips unaligned writes and a reopen sees them") {
  TempDir dir;
  const std::string path = dir / "data.img";
  const auto a = pattern(7777, 1);
  const auto b = pattern(300, 99);
  {
    auto dev = FileDevice::open(path, {.read_only = false, .create_size_bytes = 4 * kMiB});
    REQUIRE(dev.ok());
    REQUIRE((*dev)->write(12345, a).ok());
    REQUIRE((*dev)->write(12345 + 7000, b).ok());  // overlaps a's tail
    REQUIRE((*dev)->flush().ok());
    std::vector<uint8_t> back(a.size());
    REQUIRE((*dev)->read(12345, back).ok());
    CHECK(std::equal(a.begin(), a.begin() + 7000, back.begin()));
    CHECK(std::equal(b.begin(), b.end(), back.begin() + 7000));
  }
  auto dev = FileDevice::open(path);
  REQUIRE(dev.ok());
  CHECK((*dev)->size_bytes() == 4 * kMiB);
  std::vector<uint8_t> back(7300);
  REQUIRE((*dev)->read(12345, back).ok());
  CHECK(std::equal(a.begin(), a.begin() + 7000, back.begin()));
  CHECK(std::equal(b.begin(), b.end(), back.begin() + 7000));
  std::vector<uint8_t> before(1);
  REQUIRE((*dev)->read(12344, before).ok());
  CHECK(before[0] == 0);
}

TEST_CASE("FileDevice rejects out-of-range requests with EINVAL naming the file") {
  TempDir dir;
  const std::string path = dir / "small.img";
  auto dev = FileDevice::open(path, {.read_only = false, .create_size_bytes = 8192});
  REQUIRE(dev.ok());
  std::vector<uint8_t> buf(100, 1);
  auto st = (*dev)->read(8100, buf);
  CHECK(st.errnum() == EINVAL);
  CHECK(mentions(st, path));
  CHECK((*dev)->write(8093, buf).errnum() == EINVAL);
  CHECK((*dev)->write_zeroes(8192, 1).errnum() == EINVAL);
  CHECK((*dev)->discard(1, UINT64_MAX).errnum() == EINVAL);
  CHECK((*dev)->write(8092, buf).ok());
  // A rejected request changes nothing and does not grow the file.
  CHECK(static_cast<uint64_t>(stat_of(path).st_size) == 8192);
}

TEST_CASE("FileDevice opened read-only fails mutations with EROFS") {
  TempDir dir;
  const std::string path = dir / "ro.img";
  {
    auto rw = FileDevice::open(path, {.read_only = false, .create_size_bytes = 4096});
    REQUIRE(rw.ok());
    REQUIRE((*rw)->write(0, pattern(4096, 3)).ok());
  }
  auto dev = FileDevice::open(path, {.read_only = true, .create_size_bytes = 0});
  REQUIRE(dev.ok());
  std::vector<uint8_t> buf(4096);
  REQUIRE((*dev)->read(0, buf).ok());
  CHECK(buf == pattern(4096, 3));
  auto st = (*dev)->write(0, buf);
  CHECK(st.errnum() == EROFS);
  CHECK(mentions(st, path));
  CHECK((*dev)->write_zeroes(0, 512).errnum() == EROFS);
  CHECK((*dev)->discard(0, 512).errnum() == EROFS);
  CHECK((*dev)->write_durable(0, buf).errnum() == EROFS);
  CHECK((*dev)->flush().ok());
  REQUIRE((*dev)->read(0, buf).ok());
  CHECK(buf == pattern(4096, 3));
}

TEST_CASE("FileDevice reports a missing file as ENOENT naming the path") {
  TempDir dir;
  const std::string path = dir / "missing.img";
  auto dev = FileDevice::open(path);
  REQUIRE_FALSE(dev.ok());
  CHECK(dev.status().errnum() == ENOENT);
  CHECK(mentions(dev.status(), path));
  auto ro = FileDevice::open(path, {.read_only = true, .create_size_bytes = 4096});
  REQUIRE_FALSE(ro.ok());
  CHECK(ro.status().errnum() == ENOENT);
  CHECK(mentions(ro.status(), path));
  struct stat st {};
  CHECK(::stat(path.c_str(), &st) != 0);  // nothing was created
}

TEST_CASE("FileDevice refuses what is neither a file nor a block device") {
  auto dev = FileDevice::open("/dev/null");
  REQUIRE_FALSE(dev.ok());
  CHECK(dev.status().errnum() == EINVAL);
  CHECK(mentions(dev.status(), "/dev/null"));
}

TEST_CASE("FileDevice write_zeroes and discard punch holes that read as zeroes") {
  TempDir dir;
  const std::string path = dir / "holes.img";
  auto opened = FileDevice::open(path, {.read_only = false, .create_size_bytes = 8 * kMiB});
  REQUIRE(opened.ok());
  auto& dev = **opened;
  const auto data = pattern(8 * kMiB, 7);
  REQUIRE(dev.write(0, data).ok());
  REQUIRE(dev.flush().ok());
  const auto allocated_full = stat_of(path).st_blocks;

  // Unaligned edges: partial blocks are zeroed, whole ones freed.
  const uint64_t z_off = kMiB + 123, z_len = 2 * kMiB + 4000;
  REQUIRE(dev.write_zeroes(z_off, z_len).ok());
  const uint64_t d_off = 5 * kMiB, d_len = kMiB;
  REQUIRE(dev.discard(d_off, d_len).ok());
  REQUIRE(dev.flush().ok());

  std::vector<uint8_t> back(data.size());
  REQUIRE(dev.read(0, back).ok());
  for (uint64_t i = 0; i < back.size(); ++i) {
    const bool zeroed = (i >= z_off && i < z_off + z_len) || (i >= d_off && i < d_off + d_len);
    if (back[i] != (zeroed ? 0 : data[i])) FAIL("byte " << i << " is " << int{back[i]});
  }
  CHECK(dev.size_bytes() == 8 * kMiB);
  CHECK(static_cast<uint64_t>(stat_of(path).st_size) == 8 * kMiB);  // KEEP_SIZE
  // About 3 MiB of 8 was freed (512-byte st_blocks units).
  CHECK(stat_of(path).st_blocks < allocated_full - 5000);
}

namespace {

// The block-device checks, run through FileDevice on `path`; destroys the
// first 4 MiB of the device. `expected_size` is 0 when not known.
void check_block_device(const std::string& path, uint64_t expected_size) {
  auto opened = FileDevice::open(path);
  REQUIRE(opened.ok());
  auto& dev = **opened;
  REQUIRE(dev.is_block_device());
  // BLKGETSIZE64, not st_size (which is 0 for a block device).
  CHECK(stat_of(path).st_size == 0);
  if (expected_size != 0) {
    REQUIRE(dev.size_bytes() == expected_size);
  } else {
    REQUIRE(dev.size_bytes() >= 4 * kMiB);
  }
  const auto data = pattern(4 * kMiB, 5);
  REQUIRE(dev.write(0, data).ok());
  REQUIRE(dev.flush().ok());
  {
    std::vector<uint8_t> back(data.size());
    REQUIRE(dev.read(0, back).ok());
    REQUIRE(std::equal(back.begin(), back.end(), data.begin()));
    // Unaligned reads and writes work on a block device too.
    const auto odd = pattern(777, 42);
    REQUIRE(dev.write(12345, odd).ok());
    std::vector<uint8_t> odd_back(odd.size());
    REQUIRE(dev.read(12345, odd_back).ok());
    REQUIRE(std::equal(odd_back.begin(), odd_back.end(), odd.begin()));
    REQUIRE(dev.write(12345, std::span(data).subspan(12345, odd.size())).ok());
  }
  // Sector-aligned (ioctl) and unaligned (written by hand) ranges of each.
  struct Range {
    uint64_t offset, length;
  };
  const Range zeroed[] = {{4096, 8192}, {kMiB + 3, 1000}};
  const Range discarded[] = {{2 * kMiB, kMiB / 2}, {3 * kMiB + 7, 513}};
  for (auto r : zeroed) REQUIRE(dev.write_zeroes(r.offset, r.length).ok());
  for (auto r : discarded) REQUIRE(dev.discard(r.offset, r.length).ok());
  REQUIRE(dev.flush().ok());
  std::vector<uint8_t> back(data.size());
  REQUIRE(dev.read(0, back).ok());
  uint64_t zero_bytes = 0;
  for (uint64_t i = 0; i < back.size(); ++i) {
    bool zero = false;
    for (auto r : zeroed) zero = zero || (i >= r.offset && i < r.offset + r.length);
    for (auto r : discarded) zero = zero || (i >= r.offset && i < r.offset + r.length);
    if (back[i] != (zero ? 0 : data[i])) FAIL("byte " << i << " is " << int{back[i]});
    if (zero) ++zero_bytes;
  }
  CHECK(zero_bytes == 8192 + 1000 + kMiB / 2 + 513);
  // Out-of-range requests are still refused on a block device.
  CHECK(dev.write_zeroes(dev.size_bytes(), 512).errnum() == EINVAL);
}

}  // namespace

// Exercises FileDevice's block-device paths (BLKGETSIZE64, BLKZEROOUT,
// punched-hole discard, fdatasync) on a loop device over a sparse scratch
// file that it attaches and always detaches. COWSNAP_TEST_BLOCK_DEVICE, when
// set, names a scratch device to use instead; its content is destroyed.
// Needs root and loop devices: without them it fails under CI=true, and
// elsewhere skips with a warning.
TEST_CASE("FileDevice zeroes and discards a scratch block device") {
  const char* given = std::getenv("COWSNAP_TEST_BLOCK_DEVICE");
  if (given != nullptr && *given != '\0') {
    INFO("COWSNAP_TEST_BLOCK_DEVICE=" << given);
    check_block_device(given, 0);
    return;
  }
  const std::string why = cowsnap::testing::loop_devices_unavailable_reason();
  if (!why.empty()) {
    if (cowsnap::testing::in_ci()) FAIL("block device test cannot run under CI=true: " << why);
    WARN("SKIPPED: block device test needs root and loop devices (or COWSNAP_TEST_BLOCK_DEVICE): " << why);
    return;
  }
  TempDir dir;
  const std::string backing = dir / "loop-backing.img";
  constexpr uint64_t kBackingBytes = 64 * kMiB;
  { std::ofstream(backing, std::ios::binary).flush(); }
  std::filesystem::resize_file(backing, kBackingBytes);  // sparse
  REQUIRE(stat_of(backing).st_blocks == 0);
  {
    std::string error;
    auto loop = cowsnap::testing::LoopDevice::attach(backing, &error);
    if (!loop) {
      if (cowsnap::testing::in_ci())
        FAIL("block device test cannot attach a loop device under CI=true: " << error);
      WARN("SKIPPED: block device test could not attach a loop device: " << error);
      return;
    }
    INFO("loop device " << loop->dev() << " over " << backing);
    check_block_device(loop->dev(), kBackingBytes);
    // The writes went through the loop device into the scratch file.
    auto file = FileDevice::open(backing);
    REQUIRE(file.ok());
    const auto data = pattern(4 * kMiB, 5);
    std::vector<uint8_t> back(4096);
    REQUIRE((*file)->read(8192, back).ok());  // the zeroed range's tail
    CHECK(all_zero(back));
    REQUIRE((*file)->read(16384, back).ok());  // untouched data just past it
    CHECK(std::equal(back.begin(), back.end(), data.begin() + 16384));
  }
  // Detached: nothing is left attached to the scratch file.
  std::string left;
  for (int i = 0; i < 50; ++i) {
    left = cowsnap::testing::loop_devices_backed_by(backing);
    if (left.empty()) break;
    ::usleep(100 * 1000);
  }
  CHECK(left.empty());
}

TEST_CASE("FileDevice: concurrent flushes share syncs and each covers its caller's writes") {
  TempDir dir;
  auto dev = FileDevice::open(dir / "shared.img", {.read_only = false, .create_size_bytes = 4 * kMiB});
  REQUIRE(dev.ok());
  constexpr int kThreads = 8, kRounds = 40;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<uint8_t> block(4096);
      for (int r = 0; r < kRounds; ++r) {
        std::fill(block.begin(), block.end(), static_cast<uint8_t>(t * kRounds + r));
        const uint64_t at = static_cast<uint64_t>(t * kRounds + r) * 4096;
        if (!(*dev)->write(at, block).ok() || !(*dev)->flush().ok()) failures.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(failures.load() == 0);
  // Reopened: every flushed block is there.
  auto again = FileDevice::open(dir / "shared.img");
  REQUIRE(again.ok());
  std::vector<uint8_t> block(4096);
  for (int i = 0; i < kThreads * kRounds; ++i) {
    REQUIRE((*again)->read(static_cast<uint64_t>(i) * 4096, block).ok());
    REQUIRE(std::all_of(block.begin(), block.end(), [&](uint8_t b) { return b == static_cast<uint8_t>(i); }));
  }
}

namespace {

// Bytes this process has sent to the storage layer (task I/O accounting).
uint64_t process_write_bytes() {
  std::ifstream io("/proc/self/io");
  std::string key;
  uint64_t value = 0;
  while (io >> key >> value) {
    if (key == "write_bytes:") return value;
  }
  FAIL("no write_bytes in /proc/self/io");
  return 0;
}

}  // namespace

TEST_CASE("FileDevice write_durable writes its bytes durably and leaves the file's other dirty pages alone") {
  TempDir dir;
  const std::string path = dir / "durable.img";
  auto opened = FileDevice::open(path, {.read_only = false, .create_size_bytes = 16 * kMiB});
  REQUIRE(opened.ok());
  FileDevice& dev = **opened;
  const auto other = pattern(4 * kMiB, 7);
  REQUIRE(dev.write(0, other).ok());  // dirty in the page cache
  const uint64_t before = process_write_bytes();
  const auto mine = pattern(8192, 42);
  REQUIRE(dev.write_durable(8 * kMiB, mine).ok());
  const uint64_t sent = process_write_bytes() - before;
  // A flush of the whole file would have sent the 4 MiB too (fdatasync
  // writes every dirty page of the file); this sends its 8 KiB and what
  // the file system needs to find them.
  INFO("bytes sent by the durable write: " << sent);
  CHECK(sent >= mine.size());
  CHECK(sent < kMiB);
  std::vector<uint8_t> back(mine.size());
  REQUIRE(dev.read(8 * kMiB, back).ok());
  CHECK(back == mine);
  CHECK(dev.write_durable(16 * kMiB - 100, mine).errnum() == EINVAL);
}

TEST_CASE("FileDevice write_gather_durable writes more pieces than one call takes, back to back") {
  TempDir dir;
  const std::string path = dir / "gather.img";
  auto opened = FileDevice::open(path, {.read_only = false, .create_size_bytes = 4 * kMiB});
  REQUIRE(opened.ok());
  // 1100 pieces of different sizes (IOV_MAX is 1024), some empty.
  std::vector<std::vector<uint8_t>> owned;
  std::vector<std::span<const uint8_t>> pieces;
  std::vector<uint8_t> expected;
  for (size_t i = 0; i < 1100; ++i) {
    owned.push_back(pattern(i % 7 == 0 ? 0 : 100 + i % 300, static_cast<uint8_t>(i)));
    expected.insert(expected.end(), owned.back().begin(), owned.back().end());
  }
  for (const auto& o : owned) pieces.emplace_back(o);
  REQUIRE((*opened)->write_gather_durable(777, pieces).ok());
  std::vector<uint8_t> back(expected.size());
  REQUIRE((*opened)->read(777, back).ok());
  CHECK(back == expected);
}
