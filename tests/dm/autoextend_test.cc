// Autoextend's promise (SnapshotTarget::set_grower): with a grower set,
// nothing that finds a snapshot's store full overflows it — a synchronous
// origin write, a write-back batch or the snapshot's own write waits for
// the store to grow instead; once the grower fails, a full store overflows
// the snapshot as before.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
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

  explicit Rig(WriteBackOptions write_back = {}) {
    std::vector<uint8_t> before(kOrigin);
    fill_pattern(before, 0, 1);
    REQUIRE(real->write(0, before).ok());
    origin = Origin::create(real, "real", write_back);
    target = std::make_shared<SnapshotOriginTarget>(origin);
    auto s =
        open_snapshot(origin, {std::make_shared<SliceDevice>(cow_space, 0, kSmallCow), "cow", 'P', 8, true});
    REQUIRE(s.ok());
    snap = *s;
  }

  // Grows the COW as the volume layer does: a larger device over the same
  // data, readied, then taken by the store, with no barrier (the grower is
  // called one at a time).
  Status grow() {
    ++grows;
    if (cow_bytes * 2 > kCowSpace) return Status::Error(ENOSPC, "no free extents");
    auto cow = std::make_shared<SliceDevice>(cow_space, 0, cow_bytes * 2);
    COWSNAP_RETURN_IF_ERROR(snap->prepare_growth(*cow));
    cow_bytes *= 2;
    return snap->grow_store(cow);
  }

  // 32 chunks written by 4 threads; the count of failed writes.
  int write_concurrently(uint8_t seed) const {
    std::atomic<int> failed{0};
    std::vector<std::thread> writers;
    writers.reserve(4);
    for (int t = 0; t < 4; ++t) {
      writers.emplace_back([&, t] {
        for (uint64_t c = static_cast<uint64_t>(t); c < 32; c += 4) {
          if (!target->write(c * kChunk, pattern(c * kChunk, kChunk, seed)).ok()) ++failed;
        }
      });
    }
    for (auto& w : writers) w.join();
    return failed;
  }

  // The snapshot still reads the origin as it was, the origin reads the
  // writes of `seed` over its first 32 chunks.
  void check_views(uint8_t seed) const {
    std::vector<uint8_t> before(kOrigin);
    fill_pattern(before, 0, 1);
    std::vector<uint8_t> seen(kOrigin);
    REQUIRE(snap->read(0, seen).ok());
    CHECK(seen == before);
    for (uint64_t c = 0; c < 32; ++c) {
      std::vector<uint8_t> now(kChunk);
      REQUIRE(target->read(c * kChunk, now).ok());
      CHECK(now == pattern(c * kChunk, kChunk, seed));
    }
  }
};

// The store as it is on the COW space: every exception it holds.
uint64_t exceptions_on_disk(const Rig& rig) {
  uint64_t n = 0;
  auto store = open_persistent_store(std::make_shared<SliceDevice>(rig.cow_space, 0, rig.cow_bytes), 8,
                                     kOrigin, [&](ChunkIndex, ChunkIndex) { ++n; });
  REQUIRE(store.ok());
  return n;
}

}  // namespace

TEST_CASE("autoextend: a full store grows instead of overflowing, under concurrent writers", "[autoextend]") {
  Rig rig;
  rig.snap->set_grower([&] { return rig.grow(); });
  CHECK(rig.write_concurrently(2) == 0);
  std::vector<uint8_t> probe(kChunk);
  INFO(rig.snap->read(0, probe).message());
  CHECK(rig.snap->valid());
  CHECK(rig.grows >= 4);  // 1 data chunk at first, 32 needed: 3, 6, 12, 24, 48 chunks
  CHECK(rig.snap->exception_count() == 32);
  rig.check_views(2);
  CHECK(exceptions_on_disk(rig) == 32);
}

TEST_CASE("autoextend: in write-back mode the committer grows a full store instead of overflowing it",
          "[autoextend][write-back]") {
  Rig rig(WriteBackOptions{.enabled = true});
  rig.snap->set_grower([&] { return rig.grow(); });
  CHECK(rig.write_concurrently(3) == 0);
  REQUIRE(rig.target->flush().ok());
  std::vector<uint8_t> probe(kChunk);
  INFO(rig.snap->read(0, probe).message());
  CHECK(rig.snap->valid());
  CHECK(rig.grows >= 4);
  CHECK(rig.snap->exception_count() == 32);
  rig.check_views(3);
  CHECK(exceptions_on_disk(rig) == 32);
  // Flushed: the origin's device holds the writes.
  std::vector<uint8_t> on_device(kChunk);
  REQUIRE(rig.real->read(31 * kChunk, on_device).ok());
  CHECK(on_device == pattern(31 * kChunk, kChunk, 3));
}

TEST_CASE("autoextend: a committer whose grower finds the VG busy holds its batch back and tries again",
          "[autoextend][write-back]") {
  Rig rig(WriteBackOptions{.enabled = true});
  std::atomic<int> busy{0};
  rig.snap->set_grower([&] {
    if (busy.fetch_add(1) < 2) return Status::Error(EBUSY, "another command holds the volume group");
    return rig.grow();
  });
  // While the grower is busy, writes that need a copy-out and flushes fail
  // naming why (so that a command draining the origin is not stuck behind
  // them); nothing is lost, and a retry succeeds once the store grew.
  int failures = 0;
  for (uint64_t c = 0; c < 32; ++c) {
    Status written;
    for (int i = 0; i < 100; ++i) {
      written = rig.target->write(c * kChunk, pattern(c * kChunk, kChunk, 4));
      if (written.ok()) break;
      ++failures;
      CHECK(written.message().find("cannot grow yet") != std::string::npos);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    REQUIRE(written.ok());
  }
  Status flushed;
  for (int i = 0; i < 100; ++i) {
    flushed = rig.target->flush();
    if (flushed.ok()) break;
    ++failures;
    CHECK(flushed.message().find("cannot grow yet") != std::string::npos);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(failures > 0);
  INFO(flushed.message());
  REQUIRE(flushed.ok());
  CHECK(busy >= 3);
  CHECK(rig.snap->valid());
  CHECK(rig.snap->exception_count() == 32);
  rig.check_views(4);
}

TEST_CASE("autoextend: the snapshot's own writes grow a full store", "[autoextend]") {
  Rig rig;
  rig.snap->set_grower([&] { return rig.grow(); });
  // One data chunk at first: 16 chunks written to the snapshot need growth.
  std::vector<uint8_t> mine(16 * kChunk);
  fill_pattern(mine, 0, 9);
  REQUIRE(rig.snap->write(0, mine).ok());
  REQUIRE(rig.snap->write_zeroes(16 * kChunk, 8 * kChunk).ok());
  CHECK(rig.snap->valid());
  CHECK(rig.grows >= 3);
  CHECK(rig.snap->exception_count() == 24);
  std::vector<uint8_t> seen(24 * kChunk);
  REQUIRE(rig.snap->read(0, seen).ok());
  CHECK(std::equal(mine.begin(), mine.end(), seen.begin()));
  CHECK(std::all_of(seen.begin() + static_cast<std::ptrdiff_t>(mine.size()), seen.end(),
                    [](uint8_t b) { return b == 0; }));
  CHECK(exceptions_on_disk(rig) == 24);
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
