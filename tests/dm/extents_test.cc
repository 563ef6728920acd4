// Allocation maps of the dm targets (NBD block status): an origin reports
// its real device's holes and its pending write-back bytes as data; a
// snapshot reports its exceptions as data and, elsewhere, the origin's
// holes -- including after the origin has changed there.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "cowsnap/dm/snapshot.h"
#include "cowsnap/io/devices.h"
#include "gate_device.h"

using namespace cowsnap;
using cowsnap::testing::GateDevice;

namespace {

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kOrigin = 1024 * kKiB;
constexpr uint64_t kPage = 64 * kKiB;  // MemoryDevice's allocation unit
constexpr uint64_t kChunk = 4 * kKiB;

std::vector<uint8_t> filled(uint64_t n, uint8_t v) { return std::vector<uint8_t>(n, v); }

// The map of the whole device, after checking that every zero run reads
// as zeroes.
ExtentMap checked_map(BlockDevice& dev) {
  ExtentMap map;
  Status s = dev.extents(0, dev.size_bytes(), map);
  INFO(s.message());
  REQUIRE(s.ok());
  REQUIRE(map.length() == dev.size_bytes());
  uint64_t at = 0;
  for (const ExtentMap::Run& run : map.runs()) {
    if (run.zero) {
      std::vector<uint8_t> buf(run.length);
      REQUIRE(dev.read(at, buf).ok());
      INFO("zero run at " << at << "+" << run.length);
      CHECK(std::all_of(buf.begin(), buf.end(), [](uint8_t b) { return b == 0; }));
    }
    at += run.length;
  }
  return map;
}

// Whether [begin, end) lies in one run of the given kind.
bool run_is(const ExtentMap& map, uint64_t begin, uint64_t end, bool zero) {
  uint64_t at = 0;
  for (const ExtentMap::Run& run : map.runs()) {
    if (at <= begin && end <= at + run.length) return run.zero == zero;
    at += run.length;
  }
  return false;
}

struct Rig {
  std::shared_ptr<MemoryDevice> real = std::make_shared<MemoryDevice>(kOrigin, "real");
  std::shared_ptr<MemoryDevice> cow_mem = std::make_shared<MemoryDevice>(2 * kOrigin, "cow");
  std::shared_ptr<GateDevice> cow = std::make_shared<GateDevice>(cow_mem);
  std::shared_ptr<Origin> origin;
  std::shared_ptr<SnapshotOriginTarget> target;
  std::shared_ptr<SnapshotTarget> snap;

  explicit Rig(bool write_back = false) {
    // Data in the first page and in the page at 256 KiB; the rest holes.
    REQUIRE(real->write(0, filled(kPage, 0xAA)).ok());
    REQUIRE(real->write(256 * kKiB, filled(kPage, 0xBB)).ok());
    origin = Origin::create(real, "real", {write_back, 64 << 20});
    target = std::make_shared<SnapshotOriginTarget>(origin);
    auto s = open_snapshot(origin, {cow, "cow", 'P', 8, true});
    REQUIRE(s.ok());
    snap = *s;
  }
};

}  // namespace

TEST_CASE("extents: origin and snapshot report the real device's holes", "[extents]") {
  Rig rig;
  for (BlockDevice* dev :
       {static_cast<BlockDevice*>(rig.target.get()), static_cast<BlockDevice*>(rig.snap.get())}) {
    ExtentMap map = checked_map(*dev);
    CHECK(run_is(map, 0, kPage, false));
    CHECK(run_is(map, kPage, 256 * kKiB, true));
    CHECK(run_is(map, 256 * kKiB, 320 * kKiB, false));
    CHECK(run_is(map, 320 * kKiB, kOrigin, true));
  }
}

TEST_CASE("extents: after origin changes the snapshot still maps what it reads", "[extents]") {
  Rig rig;
  // A write into a hole copies the (zero) chunk out: the snapshot maps it
  // as data (its exception), the origin as data.
  REQUIRE(rig.target->write(512 * kKiB, filled(kChunk, 0x11)).ok());
  // A discard of data copies it out, then leaves a hole on the origin: the
  // snapshot must not map its old data as zeroes.
  REQUIRE(rig.target->discard(256 * kKiB, kPage).ok());
  // The snapshot's own write lands in its store only.
  REQUIRE(rig.snap->write(768 * kKiB, filled(kChunk, 0x22)).ok());

  ExtentMap origin_map = checked_map(*rig.target);
  CHECK(run_is(origin_map, 512 * kKiB, 516 * kKiB, false));
  CHECK(run_is(origin_map, 256 * kKiB, 320 * kKiB, true));
  CHECK(run_is(origin_map, 768 * kKiB, 772 * kKiB, true));

  ExtentMap snap_map = checked_map(*rig.snap);
  CHECK(run_is(snap_map, 256 * kKiB, 320 * kKiB, false));
  CHECK(run_is(snap_map, 512 * kKiB, 516 * kKiB, false));
  // The rest of that page is data on the origin's device (MemoryDevice
  // allocates 64 KiB at a time), and so in the snapshot's map.
  CHECK(run_is(snap_map, 576 * kKiB, 768 * kKiB, true));
  CHECK(run_is(snap_map, 768 * kKiB, 772 * kKiB, false));
  CHECK(run_is(snap_map, 772 * kKiB, kOrigin, true));
}

TEST_CASE("extents: pending write-back bytes are data before they reach the device",
          "[extents][write-back]") {
  Rig rig(/*write_back=*/true);
  // The committer stops at its first copy-out data write.
  rig.cow->arm(GateDevice::Kind::kWrite, 2 * kChunk);
  REQUIRE(rig.target->write(640 * kKiB, filled(kChunk, 0x33)).ok());
  REQUIRE(rig.cow->wait_entered());
  REQUIRE(rig.origin->write_back_stats().pending_regions == 1);
  ExtentMap real_map = checked_map(*rig.real);
  CHECK(run_is(real_map, 640 * kKiB, 644 * kKiB, true));  // not on the device yet

  ExtentMap origin_map = checked_map(*rig.target);
  CHECK(run_is(origin_map, 640 * kKiB, 644 * kKiB, false));
  // Pending regions do not hide the holes around them.
  CHECK(run_is(origin_map, 320 * kKiB, 636 * kKiB, true));
  CHECK(run_is(origin_map, 704 * kKiB, kOrigin, true));
  // The snapshot still reads the old (zero) chunk.
  CHECK(run_is(checked_map(*rig.snap), 640 * kKiB, 644 * kKiB, true));

  rig.cow->open();
  REQUIRE(rig.target->flush().ok());
  CHECK(run_is(checked_map(*rig.target), 640 * kKiB, 644 * kKiB, false));
  CHECK(run_is(checked_map(*rig.snap), 640 * kKiB, 644 * kKiB, false));
}

TEST_CASE("extents: a removed snapshot fails as its reads do", "[extents]") {
  Rig rig;
  rig.origin->detach_snapshot(rig.snap);
  ExtentMap map;
  CHECK(rig.snap->extents(0, kChunk, map).errnum() == ENODEV);
  ExtentMap beyond;
  CHECK(rig.target->extents(kOrigin - kChunk, 2 * kChunk, beyond).errnum() == EINVAL);
}

TEST_CASE("changed_chunks: the runs of origin chunks changed since the snapshot", "[extents]") {
  Rig rig;
  CHECK(rig.snap->changed_chunks().empty());
  REQUIRE(rig.target->write(3 * kChunk + 100, filled(2 * kChunk, 1)).ok());  // chunks 3-5
  REQUIRE(rig.target->write(10 * kChunk, filled(kChunk, 2)).ok());           // chunk 10
  REQUIRE(rig.target->write(6 * kChunk, filled(10, 3)).ok());                // chunk 6
  REQUIRE(rig.snap->write(200 * kChunk, filled(kChunk, 4)).ok());            // the snapshot's own
  REQUIRE(rig.target->write(4 * kChunk, filled(kChunk, 5)).ok());            // copied already
  const auto runs = rig.snap->changed_chunks();
  REQUIRE(runs.size() == 3);
  CHECK(runs[0].first == 3);
  CHECK(runs[0].count == 4);
  CHECK(runs[1].first == 10);
  CHECK(runs[1].count == 1);
  CHECK(runs[2].first == 200);
  CHECK(runs[2].count == 1);
}
