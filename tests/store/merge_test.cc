// Merging a persistent store (lvconvert --merge): runs come off the end of
// the table as the kernel's persistent_prepare_merge finds them, and each
// commit_merge shrinks the table on disk in the kernel's format.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <random>

#include "cowsnap/io/devices.h"
#include "cowsnap/store/exception_store.h"
#include "store_test_util.h"

using namespace cowsnap;
using namespace cowsnap::testing;

namespace {

constexpr uint64_t kDeviceChunks = 1200;

// A table of `count` exceptions in on-disk order: sequential runs of
// random length at random origin chunks, COW chunks in the kernel's
// allocation order (so runs on the COW side break at metadata chunks).
std::vector<Mapping> some_exceptions(size_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const std::vector<uint64_t> cow = kernel_allocation_order(count);
  std::vector<Mapping> out;
  uint64_t next_old = 0;
  while (out.size() < count) {
    const uint64_t run = 1 + rng() % 20;
    next_old += 1 + rng() % 50;
    for (uint64_t i = 0; i < run && out.size() < count; ++i) out.emplace_back(next_old++, cow[out.size()]);
  }
  return out;
}

std::unique_ptr<ExceptionStore> store_with(const std::shared_ptr<BlockDevice>& dev,
                                           const std::vector<Mapping>& table) {
  auto store = std::move(create_persistent_store(dev, kChunkSectors)).value();
  for (const Mapping& m : table) {
    REQUIRE(store->prepare_exception()->value == m.second);
    REQUIRE(commit_one(*store, ChunkIndex{m.first}, ChunkIndex{m.second}).ok());
  }
  return store;
}

// The run the kernel merges next from `table`: the longest suffix within
// the last area (entries counted from the table's start, 256 an area)
// whose origin and COW chunks both step by one, at most `max` long.
size_t expected_run(const std::vector<Mapping>& table, size_t max) {
  const size_t n = table.size();
  const size_t in_area = n % kPerArea == 0 ? kPerArea : n % kPerArea;
  size_t run = 1;
  while (run < std::min(in_area, max) && table[n - 1 - run].first + run == table[n - 1].first &&
         table[n - 1 - run].second + run == table[n - 1].second) {
    ++run;
  }
  return run;
}

}  // namespace

TEST_CASE("merge: runs come off the end of the table and each commit shrinks it on disk") {
  const size_t max = GENERATE(size_t{1}, size_t{7}, size_t{1000});
  INFO("runs of at most " << max << " chunks");
  auto dev = std::make_shared<MemoryDevice>(kDeviceChunks * kChunkBytes, "cow-m");
  std::vector<Mapping> table = some_exceptions(600, 11);  // three areas, the last partly full
  auto store = store_with(dev, table);
  while (!table.empty()) {
    auto run = store->prepare_merge(max);
    REQUIRE(run.ok());
    const size_t want = expected_run(table, max);
    REQUIRE(run->chunks == want);
    CHECK(run->old_first.value == table[table.size() - want].first);
    CHECK(run->cow_first.value == table[table.size() - want].second);
    REQUIRE(store->commit_merge(run->chunks).ok());
    const size_t area = (table.size() - 1) / kPerArea;  // the run's; an emptied one stays current
    table.resize(table.size() - want);
    // What the kernel would read now: exactly the rest of the table.
    Opened reopened = open_store(dev);
    REQUIRE(reopened.status.ok());
    REQUIRE(reopened.seen == table);
    // Data% as the kernel counts it while merging (persistent_commit_merge).
    const size_t left_in_area = table.size() - area * kPerArea;
    CHECK(store->usage().allocated_sectors == (area_chunk(area) + left_in_area + 1) * kChunkSectors);
    CHECK(store->usage().metadata_sectors == (area + 2) * kChunkSectors);
  }
  auto done = store->prepare_merge(max);
  REQUIRE(done.ok());
  CHECK(done->chunks == 0);
  CHECK(store->usage().allocated_sectors == store->usage().metadata_sectors);  // Data% 0
  // The cleared entries are zeroes, the kernel's end marker.
  CHECK(read_chunk(*dev, area_chunk(0)) == std::vector<uint8_t>(kChunkBytes, 0));
}

TEST_CASE("merge: a store reopened mid-merge continues where it stopped, across areas") {
  auto dev = std::make_shared<MemoryDevice>(kDeviceChunks * kChunkBytes, "cow-r");
  std::vector<Mapping> table = some_exceptions(kPerArea * 2, 5);  // two full areas, area 2 empty
  {
    auto store = store_with(dev, table);
    auto run = store->prepare_merge(3);
    REQUIRE(run.ok());
    REQUIRE(store->commit_merge(run->chunks).ok());
    table.resize(table.size() - run->chunks);
  }
  for (int restarts = 0; !table.empty(); ++restarts) {
    Opened opened = open_store(dev);
    REQUIRE(opened.status.ok());
    REQUIRE(opened.seen == table);
    auto run = opened.store->prepare_merge(50);
    REQUIRE(run.ok());
    REQUIRE(run->chunks == expected_run(table, 50));
    REQUIRE(opened.store->commit_merge(run->chunks).ok());
    table.resize(table.size() - run->chunks);
  }
}

TEST_CASE("merge: a power cut at any write leaves the table whole or without the run being merged") {
  const std::vector<Mapping> original = some_exceptions(300, 3);
  for (uint64_t cut = 0; cut < 60; ++cut) {
    INFO("power cut after " << cut << " operations of the merge");
    auto mem = std::make_shared<MemoryDevice>(kDeviceChunks * kChunkBytes, "cow-c");
    store_with(mem, original).reset();
    auto faulty = std::make_shared<FaultyDevice>(mem);
    Opened opened = open_store(faulty);
    REQUIRE(opened.status.ok());
    faulty->power_cut_after(cut);
    std::vector<Mapping> table = original;
    size_t in_flight = 0;
    for (;;) {
      auto run = opened.store->prepare_merge(10);
      if (!run.ok() || run->chunks == 0) break;
      in_flight = run->chunks;
      if (!opened.store->commit_merge(run->chunks).ok()) break;
      table.resize(table.size() - in_flight);
      in_flight = 0;
    }
    opened.store.reset();
    Opened after = open_store(mem);
    REQUIRE(after.status.ok());
    std::vector<Mapping> without_run(table.begin(), table.end() - static_cast<std::ptrdiff_t>(in_flight));
    CHECK((after.seen == table || after.seen == without_run));
  }
}

TEST_CASE("merge: an invalid store and a transient one refuse to merge") {
  auto dev = std::make_shared<MemoryDevice>(kDeviceChunks * kChunkBytes, "cow-i");
  auto store = store_with(dev, some_exceptions(10, 1));
  REQUIRE(store->invalidate().ok());
  CHECK(store->prepare_merge(8).status().errnum() == EIO);

  auto transient = std::move(create_transient_store(dev, kChunkSectors)).value();
  auto refused = transient->prepare_merge(8);
  CHECK(refused.status().errnum() == ENOTSUP);
  CHECK_THAT(refused.status().message(), Catch::Contains("cannot be merged"));
}
