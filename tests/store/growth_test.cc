// Growing a store online (lvextend, autoextend): the new room is usable at
// once, and the table stays readable at every step, even when the old end
// fell on a metadata area that was never written and the new extents hold
// an earlier LV's bytes.
#include <catch2/catch.hpp>

#include <memory>
#include <vector>

#include "cowsnap/io/devices.h"
#include "cowsnap/store/exception_store.h"
#include "store_test_util.h"

using namespace cowsnap;
using namespace cowsnap::testing;

namespace {

// The old device ends exactly where metadata area 1 would start.
constexpr uint64_t kOldChunks = 1 + kPerArea + 1;  // header, area 0, its 256 data chunks
constexpr uint64_t kNewChunks = 600;

struct Grown {
  std::shared_ptr<MemoryDevice> space = std::make_shared<MemoryDevice>(kNewChunks * kChunkBytes, "space");
  std::shared_ptr<BlockDevice> old_cow = std::make_shared<SliceDevice>(space, 0, kOldChunks* kChunkBytes);
  std::shared_ptr<BlockDevice> new_cow = std::make_shared<SliceDevice>(space, 0, kNewChunks* kChunkBytes);
  std::unique_ptr<ExceptionStore> store;

  Grown() {
    // What an earlier LV left on the extents.
    REQUIRE(space->write(0, std::vector<uint8_t>(kNewChunks * kChunkBytes, 0xFF)).ok());
    auto created = create_persistent_store(old_cow, kChunkSectors);
    REQUIRE(created.ok());
    store = std::move(*created);
    commit(kPerArea, 0);  // area 0 full: the store is full
  }

  void commit(uint64_t n, uint64_t first_old) const {
    auto chunks = store->prepare_exceptions(n);
    REQUIRE(chunks.ok());
    std::vector<NewException> batch;
    for (uint64_t i = 0; i < n; ++i) batch.push_back({ChunkIndex{first_old + i}, (*chunks)[i]});
    REQUIRE(store->commit_exceptions(batch).ok());
  }

  [[nodiscard]] uint64_t reopened_count() const {
    uint64_t n = 0;
    auto again = open_persistent_store(new_cow, kChunkSectors, [&](ChunkIndex, ChunkIndex) { ++n; });
    INFO((again.ok() ? std::string() : again.status().message()));
    REQUIRE(again.ok());
    return n;
  }
};

}  // namespace

TEST_CASE("store growth: a full store takes the new room, and the table reads back at every step",
          "[store]") {
  Grown g;
  CHECK(g.store->prepare_exceptions_if_room(1).status().errnum() == ENOSPC);
  REQUIRE(g.store->prepare_growth(*g.new_cow).ok());
  // A crash here: the VG says grown, the store has not used the room yet.
  CHECK(g.reopened_count() == kPerArea);
  REQUIRE(g.store->grow(g.new_cow).ok());
  CHECK(g.store->usage().total_sectors == kNewChunks * kChunkSectors);
  g.commit(40, 1000);  // 40 entries: past the first sector of area 1
  CHECK(g.reopened_count() == kPerArea + 40);
  CHECK(g.store->valid());
}

TEST_CASE("store growth: only to a larger device", "[store]") {
  Grown g;
  CHECK(g.store->prepare_growth(*g.old_cow).errnum() == EINVAL);
  CHECK(g.store->grow(g.old_cow).errnum() == EINVAL);
  auto transient =
      create_transient_store(std::make_shared<SliceDevice>(g.space, 0, 8 * kChunkBytes), kChunkSectors);
  REQUIRE(transient.ok());
  auto bigger = std::make_shared<SliceDevice>(g.space, 0, 16 * kChunkBytes);
  REQUIRE((*transient)->prepare_growth(*bigger).ok());
  REQUIRE((*transient)->grow(bigger).ok());
  CHECK((*transient)->usage().total_sectors == uint64_t{16} * kChunkSectors);
}
