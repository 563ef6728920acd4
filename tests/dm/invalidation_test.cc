// Invalidation is crash-safe (invariant 3 in cowsnap/snapshot.h): an origin
// write that skips a snapshot because it is invalid lands only once the
// snapshot's valid = 0 header is durable. The races are made deterministic
// with gates that hold the header write (and a copy-out's origin read)
// while another thread writes the origin; then power is cut before the
// header lands, and after "reboot" a snapshot that is still valid must read
// exactly its pre-snapshot content.
#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <thread>

#include "cowsnap/dm/snapshot.h"
#include "cowsnap/io/devices.h"
#include "dm/gate_device.h"
#include "support/patterns.h"

using namespace cowsnap;
using cowsnap::testing::byte_diff;
using cowsnap::testing::fill_pattern;
using cowsnap::testing::GateDevice;
using cowsnap::testing::pattern;

namespace {

constexpr uint64_t kChunk = 4096;
constexpr uint64_t kOrigin = 16 * kChunk;
// Header, metadata area 0 and one data chunk: the second copy-out overflows.
constexpr uint64_t kCow = 3 * kChunk;

// Origin and COW on one disk, so one power cut hits both at one instant.
struct Machine {
  std::shared_ptr<MemoryDevice> platter = std::make_shared<MemoryDevice>(kOrigin + kCow, "disk");
  std::shared_ptr<FaultyDevice> disk = std::make_shared<FaultyDevice>(platter);
  std::shared_ptr<GateDevice> real =
      std::make_shared<GateDevice>(std::make_shared<SliceDevice>(disk, 0, kOrigin));
  std::shared_ptr<GateDevice> cow =
      std::make_shared<GateDevice>(std::make_shared<SliceDevice>(disk, kOrigin, kCow));
  std::shared_ptr<Origin> origin;
  std::shared_ptr<SnapshotTarget> snapshot;

  Machine() {
    REQUIRE(real->write(0, pattern(0, kOrigin, 0)).ok());
    REQUIRE(disk->flush().ok());
    origin = Origin::create(real, "real");
    auto snap = open_snapshot(origin, {cow, "cow", 'P', 8, true});
    REQUIRE(snap.ok());
    snapshot = *snap;
    // Fills the store's only data chunk.
    REQUIRE(origin->write_origin(0, pattern(0, kChunk, 1)).ok());
  }
};

// Writes generation `gen` into chunk `chunk` of the origin, then flushes.
Status write_and_flush(Origin& origin, uint64_t chunk, uint32_t gen) {
  COWSNAP_RETURN_IF_ERROR(origin.write_origin(chunk * kChunk, pattern(chunk * kChunk, kChunk, gen)));
  return origin.flush_origin();
}

// After the cut: the origin holds every flushed write, and the snapshot,
// if still valid, reads exactly what the origin held when it was taken.
void check_after_reboot(Machine& m, uint64_t chunk, const Status& flushed_write) {
  auto real = std::make_shared<SliceDevice>(m.platter, 0, kOrigin);
  auto origin = Origin::create(real, "real");
  auto snap = open_snapshot(origin, {std::make_shared<SliceDevice>(m.platter, kOrigin, kCow), "cow", 'P', 8});
  INFO(snap.status().message());
  REQUIRE(snap.ok());
  if ((*snap)->valid()) {
    std::vector<uint8_t> all(kOrigin);
    REQUIRE((*snap)->read(0, all).ok());
    REQUIRE(byte_diff(all, pattern(0, kOrigin, 0)) == "");
  }
  if (flushed_write.ok()) {
    std::vector<uint8_t> block(kChunk);
    REQUIRE(real->read(chunk * kChunk, block).ok());
    REQUIRE(byte_diff(block, pattern(chunk * kChunk, kChunk, 2)) == "");
  }
}

// Waits up to half a second for `f`; a writer that must wait for the header
// is still blocked then (and stays blocked until the gate opens).
bool finishes_soon(std::future<Status>& f) {
  return f.wait_for(std::chrono::milliseconds(500)) == std::future_status::ready;
}

}  // namespace

TEST_CASE("an origin write skipping a snapshot being invalidated waits for its invalid header") {
  Machine m;
  m.cow->arm(GateDevice::Kind::kWrite, 0);  // the header
  auto overflowing = std::async(std::launch::async, [&] { return write_and_flush(*m.origin, 1, 2); });
  REQUIRE(m.cow->wait_entered());
  REQUIRE_FALSE(m.snapshot->valid());

  auto skipping = std::async(std::launch::async, [&] { return write_and_flush(*m.origin, 2, 2); });
  CHECK_FALSE(finishes_soon(skipping));
  m.disk->power_cut();
  m.cow->open();
  const Status skipped = skipping.get();
  const Status overflowed = overflowing.get();
  INFO("skipping write: " << skipped.to_string() << "; overflowing write: " << overflowed.to_string());
  check_after_reboot(m, 2, skipped);
}

TEST_CASE("an origin write whose copy-out finds the store invalidated waits for its invalid header") {
  Machine m;
  // The second writer passes the validity checks, then stops at its
  // copy-out's origin read while the first overflows the store.
  m.real->arm(GateDevice::Kind::kRead, 2 * kChunk);
  auto late = std::async(std::launch::async, [&] { return write_and_flush(*m.origin, 2, 2); });
  REQUIRE(m.real->wait_entered());
  m.cow->arm(GateDevice::Kind::kWrite, 0);
  auto overflowing = std::async(std::launch::async, [&] { return write_and_flush(*m.origin, 1, 2); });
  REQUIRE(m.cow->wait_entered());
  m.real->open();

  CHECK_FALSE(finishes_soon(late));
  m.disk->power_cut();
  m.cow->open();
  const Status late_status = late.get();
  const Status overflowed = overflowing.get();
  INFO("late write: " << late_status.to_string() << "; overflowing write: " << overflowed.to_string());
  check_after_reboot(m, 2, late_status);
}

TEST_CASE("an origin write fails with EIO while the invalid header cannot be written") {
  Machine m;
  m.cow->fail_writes(0, kChunk, EIO);
  std::vector<uint8_t> before(kChunk);
  REQUIRE(m.real->read(kChunk, before).ok());

  const Status s = m.origin->write_origin(kChunk, pattern(kChunk, kChunk, 2));
  INFO(s.to_string());
  REQUIRE(s.errnum() == EIO);
  CHECK(s.message().find("cow") != std::string::npos);
  CHECK_FALSE(m.snapshot->valid());
  std::vector<uint8_t> after(kChunk);
  REQUIRE(m.real->read(kChunk, after).ok());
  CHECK(byte_diff(after, before) == "");  // the origin is unchanged
  // Writes to other chunks the snapshot lacks fail too, for the same reason.
  CHECK(m.origin->write_origin(3 * kChunk, pattern(3 * kChunk, kChunk, 2)).errnum() == EIO);

  // Once the header can be written, the same write lands and the snapshot
  // is invalid on disk.
  m.cow->fail_writes(0, 0, 0);
  REQUIRE(m.origin->write_origin(kChunk, pattern(kChunk, kChunk, 2)).ok());
  auto reopened = open_persistent_store(std::make_shared<SliceDevice>(m.platter, kOrigin, kCow), 8, {});
  REQUIRE(reopened.ok());
  CHECK_FALSE((*reopened)->valid());
}
