// Autoextend's promise (SnapshotTarget::set_grower): with a grower set, a
// synchronous origin write that finds a snapshot's store full waits for the
// store to grow instead of overflowing it; once the grower fails, a full
// store overflows the snapshot as before.
#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "cowsnap/dm/snapshot.h"
#include "cowsnap/io/devices.h"
#include "support/patterns.h"

using namespace cowsnap;
using cowsnap::testing::fill_pattern;
using cowsnap::testing::pattern;

namespace {

constexpr uint64_t kChunk = 4096;
constexpr uint64_t kOrigin = 64 * kChunk;
// Header, metadata area 0 and one data chunk: the second copy-out fills it.
constexpr uint64_t kSmallCow = 3 * kChunk;
constexpr uint64_t kCowSpace = 80 * kChunk;

struct Rig {
  std::shared_ptr<MemoryDevice> real = std::make_shared<MemoryDevice>(kOrigin, "real");
  std::shared_ptr<MemoryDevice> cow_space = std::make_shared<MemoryDevice>(kCowSpace, "cow space");
  std::shared_ptr<Origin> origin;
  std::shared_ptr<SnapshotOriginTarget> target;
  std::shared_ptr<SnapshotTarget> snap;
  uint64_t cow_bytes = kSmallCow;
  std::atomic<int> grows{0};

  Rig() {
    std::vector<uint8_t> before(kOrigin);
    fill_pattern(before, 0, 1);
    REQUIRE(real->write(0, before).ok());
    origin = Origin::create(real, "real");
    target = std::make_shared<SnapshotOriginTarget>(origin);
    auto s =
        open_snapshot(origin, {std::make_shared<SliceDevice>(cow_space, 0, kSmallCow), "cow", 'P', 8, true});
    REQUIRE(s.ok());
    snap = *s;
  }

  // Grows the COW as the volume layer does: a larger device over the same
  // data, a store opened on it, swapped in behind the barrier.
  Status grow() {
    ++grows;
    auto held = origin->hold_io();
    if (cow_bytes * 2 > kCowSpace) return Status::Error(ENOSPC, "no free extents");
    cow_bytes *= 2;
    auto cow = std::make_shared<SliceDevice>(cow_space, 0, cow_bytes);
    auto store = open_persistent_store(cow, 8, kOrigin, [](ChunkIndex, ChunkIndex) {});
    if (!store.ok()) return store.status();
    return snap->replace_store(std::move(*store), held);
  }
};

}  // namespace

TEST_CASE("autoextend: a full store grows instead of overflowing, under concurrent writers", "[autoextend]") {
  Rig rig;
  rig.snap->set_grower([&] { return rig.grow(); });
  std::atomic<int> failed{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      for (uint64_t c = static_cast<uint64_t>(t); c < 32; c += 4) {
        if (!rig.target->write(c * kChunk, pattern(c * kChunk, kChunk, 2)).ok()) ++failed;
      }
    });
  }
  for (auto& w : writers) w.join();
  CHECK(failed == 0);
  std::vector<uint8_t> probe(kChunk);
  INFO(rig.snap->read(0, probe).message());
  CHECK(rig.snap->valid());
  CHECK(rig.grows >= 4);  // 1 data chunk at first, 32 needed: 3, 6, 12, 24, 48 chunks
  CHECK(rig.snap->exception_count() == 32);
  std::vector<uint8_t> before(kOrigin);
  fill_pattern(before, 0, 1);
  std::vector<uint8_t> seen(kOrigin);
  REQUIRE(rig.snap->read(0, seen).ok());
  CHECK(seen == before);
  for (uint64_t c = 0; c < 32; ++c) {
    std::vector<uint8_t> now(kChunk);
    REQUIRE(rig.target->read(c * kChunk, now).ok());
    CHECK(now == pattern(c * kChunk, kChunk, 2));
  }
}

TEST_CASE("autoextend: once the grower fails, a full store overflows the snapshot as before",
          "[autoextend]") {
  Rig rig;
  rig.snap->set_grower([&] {
    ++rig.grows;
    return Status::Error(ENOSPC, "Insufficient free space");
  });
  REQUIRE(rig.target->write(0, pattern(0, kChunk, 7)).ok());  // fills the one data chunk
  CHECK(rig.snap->valid());
  // The next copy-out finds the store full: the grower fails, the write
  // goes on and overflows the snapshot.
  REQUIRE(rig.target->write(kChunk, pattern(kChunk, kChunk, 8)).ok());
  CHECK(rig.grows == 1);
  CHECK_FALSE(rig.snap->valid());
  CHECK(rig.snap->durably_invalid());
  REQUIRE(rig.target->write(2 * kChunk, pattern(2 * kChunk, kChunk, 9)).ok());
  CHECK(rig.grows == 1);
}

TEST_CASE("autoextend: without a grower a full store overflows at once", "[autoextend]") {
  Rig rig;
  REQUIRE(rig.target->write(0, pattern(0, kChunk, 7)).ok());
  REQUIRE(rig.target->write(kChunk, pattern(kChunk, kChunk, 8)).ok());
  CHECK(rig.grows == 0);
  CHECK_FALSE(rig.snap->valid());
}

TEST_CASE("autoextend: a store past its threshold grows before the write returns", "[autoextend]") {
  Rig rig;
  // Grown first to 12 chunks (10 data chunks), then a threshold of 70%.
  REQUIRE(rig.grow().ok());
  REQUIRE(rig.grow().ok());
  rig.grows = 0;
  rig.snap->set_grower([&] { return rig.grow(); }, 70);
  for (uint64_t c = 0; c < 6; ++c)
    REQUIRE(rig.target->write(c * kChunk, pattern(c * kChunk, kChunk, 2)).ok());
  CHECK(rig.grows == 0);  // 8 of 12 chunks used: 66%
  REQUIRE(rig.target->write(6 * kChunk, pattern(6 * kChunk, kChunk, 2)).ok());
  CHECK(rig.grows == 1);  // 9 of 12: 75%, grown to 24 before the write returned
  CHECK(rig.cow_bytes == 24 * kChunk);
  CHECK(rig.snap->valid());
}
