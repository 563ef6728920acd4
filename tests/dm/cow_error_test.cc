// COW I/O errors (invariants 1 and 3 in cowsnap/snapshot.h): a copy-out
// whose data write fails — the host filesystem out of space, say — fails
// the origin write with that errno and leaves the origin unchanged and
// every snapshot valid; the same write succeeds once there is space again.
// A failed metadata commit invalidates the snapshot, durably, before the
// origin changes.
#include <fmt/format.h>
#include <catch2/catch.hpp>

#include <cerrno>
#include <filesystem>

#include "cowsnap/dm/snapshot.h"
#include "cowsnap/io/devices.h"
#include "dm/gate_device.h"
#include "support/patterns.h"
#include "support/system.h"

using namespace cowsnap;
using cowsnap::testing::byte_diff;
using cowsnap::testing::GateDevice;
using cowsnap::testing::pattern;

namespace {

constexpr uint64_t kChunk = 4096;
constexpr uint64_t kOrigin = 16 * kChunk;
constexpr uint64_t kCow = 64 * kChunk;

struct Setup {
  std::shared_ptr<MemoryDevice> real = std::make_shared<MemoryDevice>(kOrigin, "real");
  std::vector<std::shared_ptr<MemoryDevice>> cow_disks;
  std::vector<std::shared_ptr<GateDevice>> cows;
  std::vector<std::shared_ptr<SnapshotTarget>> snapshots;
  std::shared_ptr<Origin> origin;

  explicit Setup(int count) {
    REQUIRE(real->write(0, pattern(0, kOrigin, 0)).ok());
    origin = Origin::create(real, "real");
    for (int i = 0; i < count; ++i) {
      cow_disks.push_back(std::make_shared<MemoryDevice>(kCow, fmt::format("cow{}", i)));
      cows.push_back(std::make_shared<GateDevice>(cow_disks.back()));
      auto snap = open_snapshot(origin, {cows.back(), fmt::format("cow{}", i), 'P', 8, true});
      REQUIRE(snap.ok());
      snapshots.push_back(*snap);
    }
  }

  // Each snapshot, as the origin was when it was taken.
  void check_photographs() {
    for (auto& s : snapshots) {
      INFO(s->cow_name());
      REQUIRE(s->valid());
      std::vector<uint8_t> all(kOrigin);
      REQUIRE(s->read(0, all).ok());
      CHECK(byte_diff(all, pattern(0, kOrigin, 0)) == "");
    }
  }
};

}  // namespace

TEST_CASE("a COW data write failing with ENOSPC fails the origin write and invalidates nothing") {
  Setup setup(2);
  // The data chunks, not header or metadata area 0, have no room.
  for (auto& cow : setup.cows) cow->fail_writes(2 * kChunk, kCow, ENOSPC);

  const Status s = setup.origin->write_origin(3 * kChunk, pattern(3 * kChunk, kChunk, 1));
  INFO(s.to_string());
  REQUIRE(s.errnum() == ENOSPC);
  CHECK(s.message().find("cow") != std::string::npos);
  CHECK(s.message().find("full") == std::string::npos);
  std::vector<uint8_t> chunk(kChunk);
  REQUIRE(setup.real->read(3 * kChunk, chunk).ok());
  CHECK(byte_diff(chunk, pattern(3 * kChunk, kChunk, 0)) == "");  // the origin is unchanged
  for (auto& snap : setup.snapshots) {
    CHECK(snap->valid());
    CHECK(snap->status_params() == fmt::format("16/{} 16", kCow / 512));  // no chunk held
  }
  setup.check_photographs();

  // Space is freed: the same write succeeds, copying into the chunk the
  // failed attempt had reserved.
  for (auto& cow : setup.cows) cow->fail_writes(0, 0, 0);
  REQUIRE(setup.origin->write_origin(3 * kChunk, pattern(3 * kChunk, kChunk, 1)).ok());
  REQUIRE(setup.real->read(3 * kChunk, chunk).ok());
  CHECK(byte_diff(chunk, pattern(3 * kChunk, kChunk, 1)) == "");
  for (auto& snap : setup.snapshots) CHECK(snap->status_params() == fmt::format("24/{} 16", kCow / 512));
  setup.check_photographs();

  // And so after reopening.
  auto origin2 = Origin::create(setup.real, "real");
  for (auto& disk : setup.cow_disks) {
    auto snap = open_snapshot(origin2, {disk, disk->describe(), 'P', 8});
    REQUIRE(snap.ok());
    REQUIRE((*snap)->valid());
    std::vector<uint8_t> all(kOrigin);
    REQUIRE((*snap)->read(0, all).ok());
    CHECK(byte_diff(all, pattern(0, kOrigin, 0)) == "");
  }
}

TEST_CASE("a snapshot write failing with ENOSPC fails with ENOSPC and leaves the snapshot valid") {
  Setup setup(1);
  setup.cows[0]->fail_writes(2 * kChunk, kCow, ENOSPC);
  const Status s = setup.snapshots[0]->write(kChunk, pattern(kChunk, kChunk, 7));
  INFO(s.to_string());
  REQUIRE(s.errnum() == ENOSPC);
  CHECK(setup.snapshots[0]->valid());
  setup.check_photographs();
  setup.cows[0]->fail_writes(0, 0, 0);
  REQUIRE(setup.snapshots[0]->write(kChunk, pattern(kChunk, kChunk, 7)).ok());
  std::vector<uint8_t> chunk(kChunk);
  REQUIRE(setup.snapshots[0]->read(kChunk, chunk).ok());
  CHECK(byte_diff(chunk, pattern(kChunk, kChunk, 7)) == "");
}

TEST_CASE("a failed metadata commit invalidates only that snapshot, durably, before the origin changes") {
  Setup setup(2);
  setup.cows[0]->fail_writes(kChunk, 2 * kChunk, ENOSPC);  // metadata area 0 of the first store
  const Status s = setup.origin->write_origin(3 * kChunk, pattern(3 * kChunk, kChunk, 1));
  INFO(s.to_string());
  REQUIRE(s.ok());
  CHECK_FALSE(setup.snapshots[0]->valid());
  CHECK(setup.snapshots[1]->valid());
  auto reopened = open_persistent_store(setup.cow_disks[0], 8, {});
  REQUIRE(reopened.ok());
  CHECK_FALSE((*reopened)->valid());
  std::vector<uint8_t> all(kOrigin);
  CHECK(setup.snapshots[0]->read(0, all).errnum() == EIO);
  REQUIRE(setup.snapshots[1]->read(0, all).ok());
  CHECK(byte_diff(all, pattern(0, kOrigin, 0)) == "");
}

TEST_CASE("a full host filesystem (tmpfs) fails copy-outs with ENOSPC until space is freed") {
  cowsnap::testing::TempDir dir;
  const std::string mnt = dir / "mnt";
  std::filesystem::create_directory(mnt);
  const auto mounted = cowsnap::testing::run_command("mount -t tmpfs -o size=1m cowsnap-enospc " +
                                                     cowsnap::testing::shell_quote(mnt) + " 2>&1");
  if (mounted.exit_code != 0) {
    if (cowsnap::testing::in_ci()) FAIL("cannot mount a tmpfs under CI=true: " << mounted.output);
    WARN("SKIPPED: needs root to mount a small tmpfs: " << mounted.output);
    return;
  }
  struct Unmount {
    std::string path;
    ~Unmount() { (void)cowsnap::testing::run_command("umount -l " + cowsnap::testing::shell_quote(path)); }
  } unmount{mnt};

  auto real = std::make_shared<MemoryDevice>(kOrigin, "real");
  REQUIRE(real->write(0, pattern(0, kOrigin, 0)).ok());
  auto origin = Origin::create(real, "real");
  {
    // A sparse COW file far larger than the filesystem, as an overcommitted
    // host would have.
    auto cow = FileDevice::open(mnt + "/cow", {.create_size_bytes = 64 << 20});
    REQUIRE(cow.ok());
    auto snap = open_snapshot(origin, {*cow, "cow", 'P', 8, true});
    REQUIRE(snap.ok());
    // Fill what is left (dd stops with ENOSPC).
    (void)cowsnap::testing::run_command("dd if=/dev/zero of=" + cowsnap::testing::shell_quote(mnt + "/fill") +
                                        " bs=64k 2>/dev/null");
    const Status s = origin->write_origin(2 * kChunk, pattern(2 * kChunk, kChunk, 1));
    INFO(s.to_string());
    REQUIRE(s.errnum() == ENOSPC);
    CHECK_THAT(s.message(), Catch::Contains("No space left on device"));
    CHECK((*snap)->valid());

    std::filesystem::remove(mnt + "/fill");
    REQUIRE(origin->write_origin(2 * kChunk, pattern(2 * kChunk, kChunk, 1)).ok());
    REQUIRE((*snap)->valid());
    std::vector<uint8_t> all(kOrigin);
    REQUIRE((*snap)->read(0, all).ok());
    CHECK(byte_diff(all, pattern(0, kOrigin, 0)) == "");
    origin->detach_snapshot(*snap);
  }
  auto cow = FileDevice::open(mnt + "/cow");
  REQUIRE(cow.ok());
  auto reopened = open_snapshot(origin, {*cow, "cow", 'P', 8});
  REQUIRE(reopened.ok());
  REQUIRE((*reopened)->valid());
  std::vector<uint8_t> all(kOrigin);
  REQUIRE((*reopened)->read(0, all).ok());
  CHECK(byte_diff(all, pattern(0, kOrigin, 0)) == "");
  origin->detach_snapshot(*reopened);
}
