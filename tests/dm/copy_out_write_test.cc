// A request's copies go to the COW device as few writes: its chunks are
// reserved together, so consecutive ones sit side by side, and each run of
// them whose data follow each other is one write. A failed run still gives
// back every chunk the request reserved (invariant 5 in cowsnap/snapshot.h).
#include <catch2/catch.hpp>

#include <cerrno>

#include "cowsnap/dm/snapshot.h"
#include "cowsnap/io/devices.h"
#include "dm/gate_device.h"
#include "support/patterns.h"

using namespace cowsnap;
using cowsnap::testing::byte_diff;
using cowsnap::testing::GateDevice;
using cowsnap::testing::pattern;

namespace {

constexpr uint64_t kChunk = 4096;
constexpr uint64_t kOrigin = 1 << 20;

struct Rig {
  std::shared_ptr<MemoryDevice> real = std::make_shared<MemoryDevice>(kOrigin, "real");
  std::shared_ptr<Origin> origin = Origin::create(real, "real");
  SnapshotOriginTarget origin_target{origin};
  std::shared_ptr<MemoryDevice> cow_disk = std::make_shared<MemoryDevice>(2 * kOrigin, "cow");
  std::shared_ptr<GateDevice> gate = std::make_shared<GateDevice>(cow_disk);
  std::shared_ptr<CountingDevice> cow = std::make_shared<CountingDevice>(gate);
  std::shared_ptr<SnapshotTarget> snapshot;

  Rig() {
    REQUIRE(real->write(0, pattern(0, kOrigin, 0)).ok());
    auto s = open_snapshot(origin, {cow, "cow", 'P', 8, true});
    REQUIRE(s.ok());
    snapshot = *s;
    cow->reset();
  }

  void check_snapshot() {
    std::vector<uint8_t> all(kOrigin);
    REQUIRE(snapshot->read(0, all).ok());
    CHECK(byte_diff(all, pattern(0, kOrigin, 0)) == "");
  }
};

}  // namespace

TEST_CASE("a 64 KiB origin write over 4 KiB chunks copies out in one data write") {
  Rig rig;
  REQUIRE(rig.origin_target.write(16 * kChunk, pattern(16 * kChunk, 16 * kChunk, 1)).ok());
  const auto c = rig.cow->counters();
  CHECK(c.writes == 2);                            // the 16 chunks, then the metadata
  CHECK(c.bytes_written == 16 * kChunk + kChunk);  // the first commit writes its whole area
  CHECK(rig.snapshot->exception_count() == 16);
  rig.check_snapshot();

  // Unaligned: 17 chunks, read whole from the origin, still one write.
  rig.cow->reset();
  REQUIRE(rig.origin_target.write(64 * kChunk + 2048, pattern(64 * kChunk + 2048, 16 * kChunk, 2)).ok());
  CHECK(rig.cow->counters().writes == 2);
  CHECK(rig.cow->counters().bytes_written == 17 * kChunk + 1024);  // entries 16-32: two sectors
  rig.check_snapshot();
}

TEST_CASE("a snapshot write's partly written chunks break the run, whole ones go as one") {
  Rig rig;
  // 17 chunks: the first and last partly written (their images are built
  // apart), the 15 between straight from the request.
  const uint64_t at = 32 * kChunk + 2048;
  const std::vector<uint8_t> data = pattern(at, 16 * kChunk, 3);
  REQUIRE(rig.snapshot->write(at, data).ok());
  CHECK(rig.cow->counters().writes == 3 + 1);
  std::vector<uint8_t> back(data.size());
  REQUIRE(rig.snapshot->read(at, back).ok());
  CHECK(back == data);
}

TEST_CASE("a failed coalesced copy-out gives back every chunk it reserved and keeps the snapshot valid") {
  Rig rig;
  const std::string before = rig.snapshot->status_params();
  rig.gate->fail_writes(0, 2 * kOrigin, ENOSPC);
  Status s = rig.origin_target.write(0, pattern(0, 16 * kChunk, 1));
  CHECK(s.errnum() == ENOSPC);
  CHECK_THAT(s.message(), Catch::Contains("origin chunks 0-15"));
  CHECK(rig.snapshot->valid());
  CHECK(rig.snapshot->status_params() == before);  // no chunk kept
  std::vector<uint8_t> origin_now(16 * kChunk);
  REQUIRE(rig.real->read(0, origin_now).ok());
  CHECK(origin_now == pattern(0, 16 * kChunk, 0));  // the origin did not change

  rig.gate->fail_writes(0, 0, 0);
  rig.cow->reset();
  REQUIRE(rig.origin_target.write(0, pattern(0, 16 * kChunk, 1)).ok());
  CHECK(rig.cow->counters().writes == 2);  // the given-back chunks, still consecutive
  rig.check_snapshot();
}
