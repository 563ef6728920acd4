// Write-back mode (invariants 8-12 in cowsnap/dm/snapshot.h): pending data
// is read correctly, reaches the origin device only after its exceptions
// are durable, is durable after a flush, stays within its memory bound, and
// survives overflow, COW write errors and barrier operations.
#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "cowsnap/dm/snapshot.h"
#include "cowsnap/io/devices.h"
#include "gate_device.h"

using namespace cowsnap;
using cowsnap::testing::GateDevice;

namespace {

constexpr uint64_t kOrigin = 256 * 1024;
constexpr uint64_t kChunk = 4096;
// Persistent store with 4 KiB chunks: header, first metadata area, data.
constexpr uint64_t kFirstDataChunk = 2 * kChunk;

// Calls `on_write` before each write reaches the device.
class WatchedDevice final : public DeviceWrapper {
 public:
  using DeviceWrapper::DeviceWrapper;
  std::function<void(uint64_t, uint64_t)> on_write;
  Status write(uint64_t offset, std::span<const uint8_t> buf) override {
    if (on_write) on_write(offset, buf.size());
    return DeviceWrapper::write(offset, buf);
  }
};

// Holds the first write to `device` (the committer's first origin write)
// until open().
class FirstWriteGate {
 public:
  explicit FirstWriteGate(WatchedDevice& device) {
    device.on_write = [this](uint64_t, uint64_t) {
      std::unique_lock lock(mu_);
      if (!first_) return;
      first_ = false;
      entered_ = true;
      cv_.notify_all();
      cv_.wait(lock, [&] { return open_; });
    };
  }
  bool wait_entered() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(30), [&] { return entered_; });
  }
  void open() {
    {
      std::lock_guard lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool entered_ = false, open_ = false, first_ = true;
};

std::vector<uint8_t> filled(uint64_t n, uint8_t v) { return std::vector<uint8_t>(n, v); }

std::vector<uint8_t> read_all(BlockDevice& d, uint64_t offset = 0, uint64_t n = kOrigin) {
  std::vector<uint8_t> buf(n);
  REQUIRE(d.read(offset, buf).ok());
  return buf;
}

std::vector<uint8_t> read_all(Target& t, uint64_t offset = 0, uint64_t n = kOrigin) {
  std::vector<uint8_t> buf(n);
  Status s = t.read(offset, buf);
  INFO(s.message());
  REQUIRE(s.ok());
  return buf;
}

struct Rig {
  std::shared_ptr<MemoryDevice> platter = std::make_shared<MemoryDevice>(kOrigin, "real");
  std::shared_ptr<WatchedDevice> real = std::make_shared<WatchedDevice>(platter);
  std::shared_ptr<MemoryDevice> cow_mem = std::make_shared<MemoryDevice>(2 * kOrigin, "cow");
  std::shared_ptr<GateDevice> cow = std::make_shared<GateDevice>(cow_mem);
  std::shared_ptr<Origin> origin;
  std::shared_ptr<SnapshotOriginTarget> target;
  std::shared_ptr<SnapshotTarget> snap;

  explicit Rig(uint64_t max_pending = 64 << 20) {
    REQUIRE(platter->write(0, filled(kOrigin, 0xAA)).ok());
    origin = Origin::create(real, "real", {true, max_pending});
    target = std::make_shared<SnapshotOriginTarget>(origin);
    auto s = open_snapshot(origin, {cow, "cow", 'P', 8, true});
    REQUIRE(s.ok());
    snap = *s;
  }
};

}  // namespace

TEST_CASE("write-back: reads see pending data, the device sees it only after the copy-out", "[write-back]") {
  Rig rig;
  // The committer stops at the copy-out's data write.
  rig.cow->arm(GateDevice::Kind::kWrite, kFirstDataChunk);
  REQUIRE(rig.target->write(8192, filled(1000, 0x11)).ok());  // sub-chunk
  REQUIRE(rig.cow->wait_entered());
  CHECK(rig.origin->write_back_stats().pending_regions == 1);
  // A second write to the pending chunk goes into the pending entry.
  REQUIRE(rig.target->write(9192, filled(100, 0x22)).ok());

  auto want = filled(kOrigin, 0xAA);
  std::fill_n(want.begin() + 8192, 1000, 0x11);
  std::fill_n(want.begin() + 9192, 100, 0x22);
  CHECK(read_all(*rig.target) == want);
  CHECK(read_all(*rig.snap) == filled(kOrigin, 0xAA));
  // Nothing new on the device while the exception is not durable.
  CHECK(read_all(*rig.platter) == filled(kOrigin, 0xAA));

  rig.cow->open();
  REQUIRE(rig.target->flush().ok());
  CHECK(rig.origin->write_back_stats().pending_regions == 0);
  CHECK(read_all(*rig.platter) == want);
  CHECK(read_all(*rig.snap) == filled(kOrigin, 0xAA));
  CHECK(rig.snap->has_exception(ChunkIndex{2}));
}

TEST_CASE("write-back: new origin data reaches the device only after its exception is durable",
          "[write-back]") {
  Rig rig;
  std::atomic<int> early{0}, writes{0};
  rig.real->on_write = [&](uint64_t offset, uint64_t length) {
    ++writes;
    for (uint64_t c = offset / kChunk; c * kChunk < offset + length; ++c) {
      // The table holds only committed exceptions (invariant 4).
      if (rig.snap->valid() && !rig.snap->has_exception(ChunkIndex{c})) ++early;
    }
  };
  std::atomic<int> failed{0};  // Catch's assertions are for the test's own thread
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 0; i < 200; ++i) {
        const uint64_t off = ((i * 7919 + static_cast<uint64_t>(t) * 31) % (kOrigin / 512)) * 512;
        const uint64_t len = std::min<uint64_t>(512 * (1 + i % 9), kOrigin - off);
        if (!rig.target->write(off, filled(len, static_cast<uint8_t>(t + 1))).ok()) ++failed;
        if (i % 50 == 0 && !rig.target->flush().ok()) ++failed;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(failed == 0);
  REQUIRE(rig.target->flush().ok());
  CHECK(writes > 0);
  CHECK(early == 0);
  CHECK(read_all(*rig.snap) == filled(kOrigin, 0xAA));
  CHECK(read_all(*rig.platter) == read_all(*rig.target));
}

TEST_CASE("write-back: a flush makes every earlier write durable", "[write-back]") {
  auto platter = std::make_shared<MemoryDevice>(3 * kOrigin, "disk");
  auto disk = std::make_shared<FaultyDevice>(platter);
  auto real = std::make_shared<SliceDevice>(disk, 0, kOrigin);
  auto cow = std::make_shared<SliceDevice>(disk, kOrigin, 2 * kOrigin);
  REQUIRE(real->write(0, filled(kOrigin, 0xAA)).ok());
  REQUIRE(disk->flush().ok());
  auto want = filled(kOrigin, 0xAA);
  {
    auto origin = Origin::create(real, "real", {true, 64 << 20});
    SnapshotOriginTarget target(origin);
    REQUIRE(open_snapshot(origin, {cow, "cow", 'P', 8, true}).ok());
    for (uint64_t i = 0; i < 40; ++i) {
      const uint64_t off = (i * 37 % 60) * kChunk + (i % 3) * 512;
      REQUIRE(target.write(off, filled(1536, static_cast<uint8_t>(i + 1))).ok());
      std::fill_n(want.begin() + static_cast<std::ptrdiff_t>(off), 1536, static_cast<uint8_t>(i + 1));
    }
    REQUIRE(target.flush().ok());
    disk->power_cut();  // the origin's destructor can write nothing more
  }
  auto real2 = std::make_shared<SliceDevice>(platter, 0, kOrigin);
  CHECK(read_all(*real2) == want);
  auto origin2 = Origin::create(real2, "real");
  auto snap = open_snapshot(
      origin2, {std::make_shared<SliceDevice>(platter, kOrigin, 2 * kOrigin), "cow", 'P', 8, false});
  REQUIRE(snap.ok());
  REQUIRE((*snap)->valid());
  CHECK(read_all(**snap) == filled(kOrigin, 0xAA));
}

TEST_CASE("write-back: pending memory stays within its bound and writers wait", "[write-back]") {
  constexpr uint64_t kBound = 64 * 1024;  // 8 regions of 4 KiB, old and new
  Rig rig(kBound);
  rig.cow->arm(GateDevice::Kind::kWrite, kFirstDataChunk);
  std::atomic<int> done{0};
  std::atomic<int> failed{0};  // Catch's assertions are for the test's own thread
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 0; i < 8; ++i) {
        const uint64_t chunk = static_cast<uint64_t>(t) * 8 + i;
        if (!rig.target->write(chunk * kChunk, filled(kChunk, static_cast<uint8_t>(chunk))).ok()) ++failed;
        ++done;
      }
    });
  }
  REQUIRE(rig.cow->wait_entered());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  // The committer is stuck with its batch, so writers beyond the bound wait.
  CHECK(done < 32);
  CHECK(rig.origin->write_back_stats().pending_bytes <= kBound);
  rig.cow->open();
  for (auto& th : threads) th.join();
  CHECK(failed == 0);
  REQUIRE(rig.target->flush().ok());
  CHECK(done == 32);
  CHECK(rig.origin->write_back_stats().peak_pending_bytes <= kBound);
  CHECK(rig.origin->write_back_stats().peak_pending_bytes > 0);
  for (uint64_t chunk = 0; chunk < 32; ++chunk) {
    CHECK(read_all(*rig.platter, chunk * kChunk, kChunk) == filled(kChunk, static_cast<uint8_t>(chunk)));
  }
  CHECK(read_all(*rig.snap) == filled(kOrigin, 0xAA));
}

TEST_CASE("write-back: overflow in the background invalidates durably, the others carry on", "[write-back]") {
  Rig rig;
  // Room for 4 data chunks only.
  auto small_mem = std::make_shared<MemoryDevice>(7 * kChunk, "small");
  auto small = open_snapshot(rig.origin, {small_mem, "small", 'P', 8, true});
  REQUIRE(small.ok());
  std::vector<uint64_t> device_writes;
  rig.real->on_write = [&](uint64_t offset, uint64_t) {
    // Origin data of the batch reaches the device only once the overflowed
    // store says so on disk.
    if ((*small)->valid()) return;
    CHECK((*small)->durably_invalid());
    device_writes.push_back(offset);
  };
  for (uint64_t c = 0; c < 16; ++c) REQUIRE(rig.target->write(c * kChunk, filled(kChunk, 0x33)).ok());
  REQUIRE(rig.target->flush().ok());
  CHECK_FALSE((*small)->valid());
  CHECK(rig.snap->valid());
  CHECK(read_all(*rig.snap) == filled(kOrigin, 0xAA));
  auto want = filled(kOrigin, 0xAA);
  std::fill_n(want.begin(), 16 * kChunk, 0x33);
  CHECK(read_all(*rig.target) == want);
  CHECK(read_all(*rig.platter) == want);
  // The invalid header is on disk.
  auto reopened = open_persistent_store(small_mem, 8, [](ChunkIndex, ChunkIndex) {});
  REQUIRE(reopened.ok());
  CHECK_FALSE((*reopened)->valid());
}

TEST_CASE("write-back: a failed COW write holds the origin data back and fails the flush", "[write-back]") {
  Rig rig;
  rig.cow->fail_writes(kFirstDataChunk, 2 * kOrigin, ENOSPC);
  REQUIRE(rig.target->write(0, filled(kChunk, 0x44)).ok());
  Status flushed = rig.target->flush();
  CHECK(flushed.errnum() == ENOSPC);
  CHECK(rig.snap->valid());
  CHECK(read_all(*rig.platter, 0, kChunk) == filled(kChunk, 0xAA));
  CHECK(read_all(*rig.target, 0, kChunk) == filled(kChunk, 0x44));
  CHECK(read_all(*rig.snap, 0, kChunk) == filled(kChunk, 0xAA));
  // Space again: the retry lands everything.
  rig.cow->fail_writes(0, 0, 0);
  Status again;
  for (int i = 0; i < 50; ++i) {
    again = rig.target->flush();
    if (again.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  INFO(again.message());
  REQUIRE(again.ok());
  CHECK(read_all(*rig.platter, 0, kChunk) == filled(kChunk, 0x44));
  CHECK(read_all(*rig.snap, 0, kChunk) == filled(kChunk, 0xAA));
}

TEST_CASE("write-back: attach, detach and grow_store with copy-outs pending", "[write-back]") {
  Rig rig;
  for (uint64_t c = 0; c < 8; ++c) REQUIRE(rig.target->write(c * kChunk, filled(kChunk, 0x55)).ok());
  // A snapshot taken now holds the pending writes.
  auto cow2 = std::make_shared<MemoryDevice>(2 * kOrigin, "cow2");
  auto snap2 = open_snapshot(rig.origin, {cow2, "cow2", 'P', 16, true});
  REQUIRE(snap2.ok());
  CHECK(rig.origin->write_back_stats().pending_regions == 0);
  auto after_first = filled(kOrigin, 0xAA);
  std::fill_n(after_first.begin(), 8 * kChunk, 0x55);
  CHECK(read_all(**snap2) == after_first);

  // Region size is 8 KiB now; write while both need copies, then grow the
  // first snapshot's store (the barrier only keeps the copy below whole:
  // growing needs none).
  for (uint64_t c = 4; c < 12; ++c) REQUIRE(rig.target->write(c * kChunk, filled(kChunk, 0x66)).ok());
  {
    auto held = rig.origin->hold_io();
    CHECK(rig.origin->write_back_stats().pending_regions == 0);
    auto bigger = std::make_shared<MemoryDevice>(4 * kOrigin, "cow-big");
    REQUIRE(bigger->write(0, read_all(*rig.cow_mem, 0, 2 * kOrigin)).ok());
    REQUIRE(rig.snap->prepare_growth(*bigger).ok());
    REQUIRE(rig.snap->grow_store(bigger).ok());
    CHECK(rig.snap->usage().total_sectors == 4 * kOrigin / kSectorBytes);
  }
  for (uint64_t c = 12; c < 16; ++c) REQUIRE(rig.target->write(c * kChunk, filled(kChunk, 0x77)).ok());
  rig.origin->detach_snapshot(*snap2);
  CHECK((*snap2)->read(0, std::span<uint8_t>()).errnum() == ENODEV);
  for (uint64_t c = 16; c < 20; ++c) REQUIRE(rig.target->write(c * kChunk, filled(kChunk, 0x88)).ok());
  REQUIRE(rig.target->flush().ok());
  CHECK(read_all(*rig.snap) == filled(kOrigin, 0xAA));
  auto want = after_first;
  std::fill_n(want.begin() + 4 * kChunk, 8 * kChunk, 0x66);
  std::fill_n(want.begin() + 12 * kChunk, 4 * kChunk, 0x77);
  std::fill_n(want.begin() + 16 * kChunk, 4 * kChunk, 0x88);
  CHECK(read_all(*rig.target) == want);
  CHECK(read_all(*rig.platter) == want);
}

TEST_CASE("write-back: snapshot writes and write-zeroes wait for pending copy-outs", "[write-back]") {
  Rig rig;
  REQUIRE(rig.target->write(0, filled(2 * kChunk, 0x12)).ok());
  // The snapshot's own write of a pending chunk keeps its data; the pending
  // copy-out must not overwrite it.
  REQUIRE(rig.snap->write(512, filled(512, 0x34)).ok());
  REQUIRE(rig.target->write_zeroes(kChunk, 1024).ok());
  REQUIRE(rig.target->flush().ok());
  auto snap_want = filled(kOrigin, 0xAA);
  std::fill_n(snap_want.begin() + 512, 512, 0x34);
  CHECK(read_all(*rig.snap) == snap_want);
  auto want = filled(kOrigin, 0xAA);
  std::fill_n(want.begin(), 2 * kChunk, 0x12);
  std::fill_n(want.begin() + kChunk, 1024, 0);
  CHECK(read_all(*rig.target) == want);
  CHECK(read_all(*rig.platter) == want);
}

TEST_CASE("write-back: with copy-outs stuck on a full COW filesystem, attach fails and detach unblocks",
          "[write-back]") {
  Rig rig;
  rig.cow->fail_writes(kFirstDataChunk, 2 * kOrigin, ENOSPC);
  REQUIRE(rig.target->write(0, filled(kChunk, 0x99)).ok());
  CHECK(rig.target->flush().errnum() == ENOSPC);
  // A new snapshot would read the origin device, which lacks the write.
  auto cow2 = std::make_shared<MemoryDevice>(2 * kOrigin, "cow2");
  auto snap2 = open_snapshot(rig.origin, {cow2, "cow2", 'P', 8, true});
  CHECK(snap2.status().errnum() == ENOSPC);
  CHECK(rig.origin->snapshots().size() == 1);
  // Dropping the snapshot drops what it still needed: the data can land.
  rig.origin->detach_snapshot(rig.snap);
  Status flushed;
  for (int i = 0; i < 50; ++i) {
    flushed = rig.target->flush();
    if (flushed.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  INFO(flushed.message());
  REQUIRE(flushed.ok());
  CHECK(read_all(*rig.platter, 0, kChunk) == filled(kChunk, 0x99));
  CHECK(rig.origin->write_back_stats().pending_regions == 0);
}

TEST_CASE("write-back: pending origin data never overtakes a newer write of a copied chunk", "[write-back]") {
  Rig rig;
  FirstWriteGate gate(*rig.real);
  REQUIRE(rig.target->write(0, filled(kChunk, 0x11)).ok());
  // The committer has committed the exception and stopped before writing
  // the pending data to the device.
  REQUIRE(gate.wait_entered());
  REQUIRE(rig.snap->has_exception(ChunkIndex{0}));
  // No copy is needed any more, but the pending bytes must not land after
  // this write.
  REQUIRE(rig.target->write(0, filled(kChunk, 0x22)).ok());
  gate.open();
  REQUIRE(rig.target->flush().ok());
  CHECK(read_all(*rig.platter, 0, kChunk) == filled(kChunk, 0x22));
  CHECK(read_all(*rig.target, 0, kChunk) == filled(kChunk, 0x22));
  CHECK(read_all(*rig.snap, 0, kChunk) == filled(kChunk, 0xAA));
}

TEST_CASE("write-back: an entry's old content is dropped once copied out, and read again when needed",
          "[write-back]") {
  // Snapshots with 4 KiB and 64 KiB chunks: the region is 64 KiB, so a
  // later write can leave a 4 KiB chunk of a copied-out region missing.
  constexpr uint64_t kRegion = 64 * 1024;
  auto platter = std::make_shared<MemoryDevice>(kOrigin, "real");
  REQUIRE(platter->write(0, filled(kOrigin, 0xAA)).ok());
  auto real = std::make_shared<WatchedDevice>(platter);
  auto origin = Origin::create(real, "real", {true, 64 << 20});
  auto target = std::make_shared<SnapshotOriginTarget>(origin);
  auto small_cow = std::make_shared<GateDevice>(std::make_shared<MemoryDevice>(2 * kOrigin, "cow4"));
  auto small = open_snapshot(origin, {small_cow, "cow4", 'P', 8, true});
  auto large =
      open_snapshot(origin, {std::make_shared<MemoryDevice>(4 * kOrigin, "cow64"), "cow64", 'P', 128, true});
  REQUIRE(small.ok());
  REQUIRE(large.ok());
  REQUIRE(origin->region_bytes() == kRegion);

  FirstWriteGate gate(*real);
  REQUIRE(target->write(0, filled(kChunk, 0x11)).ok());
  // Copied out to both stores; the origin write waits at the gate.
  REQUIRE(gate.wait_entered());
  // Only the region's new content is held now.
  const uint64_t held = origin->write_back_stats().pending_bytes;
  CHECK(held >= kRegion);
  CHECK(held < 2 * kRegion);
  // Chunk 1 of the small snapshot has no exception yet: the region's old
  // content is needed again, for it, until its copy-out (held at the gate)
  // is done.
  small_cow->arm(GateDevice::Kind::kWrite, kFirstDataChunk + kChunk);
  REQUIRE(target->write(kChunk, filled(kChunk, 0x22)).ok());
  REQUIRE(small_cow->wait_entered());
  CHECK(origin->write_back_stats().pending_bytes == held + kRegion);
  CHECK(read_all(**small, 0, kRegion) == filled(kRegion, 0xAA));
  CHECK(read_all(**large, 0, kRegion) == filled(kRegion, 0xAA));
  small_cow->open();
  gate.open();
  REQUIRE(target->flush().ok());
  CHECK(origin->write_back_stats().pending_bytes == 0);
  std::vector<uint8_t> expected = filled(kRegion, 0xAA);
  std::fill_n(expected.begin(), kChunk, uint8_t{0x11});
  std::fill_n(expected.begin() + kChunk, kChunk, uint8_t{0x22});
  CHECK(read_all(*platter, 0, kRegion) == expected);
  CHECK(read_all(*target, 0, kRegion) == expected);
  CHECK(read_all(**small, 0, kRegion) == filled(kRegion, 0xAA));
  CHECK(read_all(**large, 0, kRegion) == filled(kRegion, 0xAA));
  CHECK((*small)->has_exception(ChunkIndex{1}));
}
