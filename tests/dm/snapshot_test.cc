#include <catch2/catch.hpp>

#include <cerrno>

#include "cowsnap/dm/snapshot.h"
#include "cowsnap/io/devices.h"
#include "support/checks.h"
#include "support/patterns.h"

using namespace cowsnap;
using cowsnap::testing::byte_diff;
using cowsnap::testing::must;
using cowsnap::testing::pattern;
using cowsnap::testing::read_bytes;

namespace {

constexpr uint64_t kMiB = 1 << 20;

struct Rig {
  std::shared_ptr<MemoryDevice> real = std::make_shared<MemoryDevice>(4 * kMiB, "real");
  std::shared_ptr<Origin> origin = Origin::create(real, "vg-lv-real");
  SnapshotOriginTarget origin_target{origin};

  Rig() { REQUIRE(real->write(0, pattern(0, 4 * kMiB, 0)).ok()); }

  std::shared_ptr<SnapshotTarget> snap(std::shared_ptr<BlockDevice> cow, uint32_t chunk_sectors = 8,
                                       char type = 'P', bool create = true) {
    auto s = open_snapshot(origin, {cow, "cow", type, chunk_sectors, create});
    REQUIRE(s.ok());
    return *s;
  }
};

}  // namespace

TEST_CASE("a snapshot keeps the origin's old content while the origin changes") {
  Rig rig;
  auto cow = std::make_shared<MemoryDevice>(2 * kMiB, "cow");
  auto snap = rig.snap(cow);
  CHECK(snap->status_params() == "16/4096 16");

  REQUIRE(rig.origin_target.write(5000, pattern(5000, 10000, 1)).ok());
  CHECK(byte_diff(read_bytes(rig.origin_target, 5000, 10000), pattern(5000, 10000, 1)) == "");
  CHECK(byte_diff(read_bytes(*snap, 0, 4 * kMiB), pattern(0, 4 * kMiB, 0)) == "");
  // Chunks 1..3 copied: header + area + 3 data chunks.
  CHECK(snap->exception_count() == 3);
  CHECK(snap->status_params() == "40/4096 16");

  // Rewriting the same chunks copies nothing more.
  REQUIRE(rig.origin_target.write(4096, pattern(4096, 8192, 2)).ok());
  CHECK(snap->exception_count() == 3);
  CHECK(byte_diff(read_bytes(*snap, 4096, 8192), pattern(4096, 8192, 0)) == "");

  // Write-zeroes and discard on the origin copy out too.
  REQUIRE(rig.origin_target.write_zeroes(kMiB, 4096).ok());
  REQUIRE(rig.origin_target.discard(2 * kMiB, 8192).ok());
  CHECK(snap->exception_count() == 6);
  CHECK(byte_diff(read_bytes(*snap, 0, 4 * kMiB), pattern(0, 4 * kMiB, 0)) == "");
  CHECK(byte_diff(read_bytes(rig.origin_target, kMiB, 4096), std::vector<uint8_t>(4096, 0)) == "");
}

TEST_CASE("snapshots are writable and partial writes keep the rest of the chunk") {
  Rig rig;
  auto snap = rig.snap(std::make_shared<MemoryDevice>(kMiB, "cow"), 32);  // 16 KiB chunks
  REQUIRE(snap->write(16384 + 1000, pattern(16384 + 1000, 100, 7)).ok());
  auto got = read_bytes(*snap, 16384, 16384);
  auto want = pattern(16384, 16384, 0);
  std::copy_n(pattern(16384 + 1000, 100, 7).begin(), 100, want.begin() + 1000);
  CHECK(byte_diff(got, want) == "");
  // The origin is untouched.
  CHECK(byte_diff(read_bytes(rig.origin_target, 16384, 16384), pattern(16384, 16384, 0)) == "");
  // A later origin write does not clobber the snapshot's own data.
  REQUIRE(rig.origin_target.write(16384, pattern(16384, 16384, 3)).ok());
  CHECK(byte_diff(read_bytes(*snap, 16384, 16384), want) == "");
}

TEST_CASE("several snapshots with different chunk sizes each keep their photograph") {
  Rig rig;
  auto s1 = rig.snap(std::make_shared<MemoryDevice>(2 * kMiB, "cow1"), 8);
  REQUIRE(rig.origin_target.write(0, pattern(0, 64 * 1024, 1)).ok());
  auto s2 = rig.snap(std::make_shared<MemoryDevice>(2 * kMiB, "cow2"), 128, 'N');  // 64 KiB chunks
  CHECK(rig.origin->region_bytes() == 64 * 1024);
  REQUIRE(rig.origin_target.write(30000, pattern(30000, 100000, 2)).ok());

  auto want1 = pattern(0, 4 * kMiB, 0);
  auto want2 = want1;
  std::copy_n(pattern(0, 64 * 1024, 1).begin(), 64 * 1024, want2.begin());
  CHECK(byte_diff(read_bytes(*s1, 0, 4 * kMiB), want1) == "");
  CHECK(byte_diff(read_bytes(*s2, 0, 4 * kMiB), want2) == "");
  CHECK(s2->table_params() == "vg-lv-real cow N 128");
  CHECK(s2->status_params() == "256/4096 0");
}

TEST_CASE("an overflowing snapshot is invalidated alone, persistently") {
  Rig rig;
  // 64 KiB store of 4 KiB chunks: 16 chunks, 14 data chunks.
  auto small_cow = std::make_shared<MemoryDevice>(64 * 1024, "small");
  auto big_cow = std::make_shared<MemoryDevice>(kMiB, "big");
  auto small = rig.snap(small_cow);
  auto big = rig.snap(big_cow);
  REQUIRE(rig.origin_target.write(0, pattern(0, 14 * 4096, 1)).ok());
  CHECK(small->valid());
  CHECK(small->status_params() == "128/128 16");
  REQUIRE(rig.origin_target.write(14 * 4096, pattern(14 * 4096, 4096, 1)).ok());  // the origin write succeeds
  CHECK_FALSE(small->valid());
  CHECK(small->status_params() == "Invalid");
  std::vector<uint8_t> buf(4096);
  Status r = small->read(0, buf);
  CHECK(r.errnum() == EIO);
  CHECK_THAT(r.message(), Catch::Contains("snapshot store is full (14 data chunks of 8 sectors)"));
  CHECK(small->write(0, buf).errnum() == EIO);
  CHECK(big->valid());
  CHECK(byte_diff(read_bytes(*big, 0, 4 * kMiB), pattern(0, 4 * kMiB, 0)) == "");
  CHECK(byte_diff(read_bytes(rig.origin_target, 0, 15 * 4096), pattern(0, 15 * 4096, 1)) == "");

  // The header on disk says invalid: reopening keeps it invalid.
  auto origin2 = Origin::create(rig.real, "vg-lv-real");
  auto reopened = open_snapshot(origin2, {small_cow, "small", 'P', 8, false});
  REQUIRE(reopened.ok());
  CHECK_FALSE((*reopened)->valid());
  CHECK((*reopened)->read(0, buf).errnum() == EIO);
  auto big2 = open_snapshot(origin2, {big_cow, "big", 'P', 8, false});
  REQUIRE(big2.ok());
  CHECK((*big2)->exception_count() == 15);
  CHECK(byte_diff(read_bytes(**big2, 0, 4 * kMiB), pattern(0, 4 * kMiB, 0)) == "");
}

TEST_CASE("a snapshot write that fills the store fails with EIO and invalidates it") {
  Rig rig;
  auto snap = rig.snap(std::make_shared<MemoryDevice>(64 * 1024, "small"));
  REQUIRE(snap->write(0, pattern(0, 14 * 4096, 5)).ok());
  CHECK(snap->write(14 * 4096, pattern(0, 4096, 5)).errnum() == EIO);
  CHECK_FALSE(snap->valid());
}

TEST_CASE("a detached snapshot stops getting copies and fails I/O") {
  Rig rig;
  auto snap = rig.snap(std::make_shared<MemoryDevice>(kMiB, "cow"));
  rig.origin->detach_snapshot(snap);
  REQUIRE(rig.origin_target.write(0, pattern(0, 4096, 1)).ok());
  std::vector<uint8_t> buf(4096);
  CHECK(snap->read(0, buf).errnum() == ENODEV);
  CHECK(snap->exception_count() == 0);
}
