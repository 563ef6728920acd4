// Allocation, overflow, usage and invalidation of the persistent store.
#include <catch2/catch.hpp>

#include <cerrno>

#include "cowsnap/io/devices.h"
#include "cowsnap/store/exception_store.h"
#include "store_test_util.h"

using namespace cowsnap;
using namespace cowsnap::testing;

namespace {

// Data chunks a store of `chunks` chunks holds, per docs/dm-snapshot.md.
uint64_t documented_capacity(uint64_t chunks) {
  const uint64_t after_header = chunks - 1;
  const uint64_t areas = (after_header + kPerArea) / (kPerArea + 1);  // ceil(after_header / 257)
  return after_header - areas;
}

// The same by brute force: chunks 2..S-1 that are not metadata chunks.
uint64_t counted_capacity(uint64_t chunks) {
  uint64_t n = 0;
  for (uint64_t c = 2; c < chunks; ++c) n += (c % (kPerArea + 1) != 1) ? 1u : 0u;
  return n;
}

uint64_t prepare_until_full(ExceptionStore& store) {
  uint64_t n = 0;
  for (;;) {
    auto cow = store.prepare_exception();
    if (!cow.ok()) {
      CHECK(cow.status().errnum() == ENOSPC);
      return n;
    }
    ++n;
  }
}

}  // namespace

TEST_CASE("allocation starts at chunk 2 and skips metadata chunks") {
  auto dev = std::make_shared<MemoryDevice>(2000 * kChunkBytes, "cow-a");
  auto store = std::move(create_persistent_store(dev, kChunkSectors)).value();
  std::vector<uint64_t> got;
  for (int i = 0; i < 600; ++i) got.push_back(store->prepare_exception()->value);
  CHECK(got.front() == 2);
  CHECK(got[255] == 257);  // the 256th fills the gap between areas 0 and 1
  CHECK(got[256] == 259);  // the 257th jumps over area 1 at chunk 258
  CHECK(got[512] == 516);  // and area 2 at chunk 515
  CHECK(got == kernel_allocation_order(600));
  CHECK(store->usage().allocated_sectors == (got.back() + 1) * 8);
}

TEST_CASE("usage follows the kernel's formulas") {
  auto dev = std::make_shared<MemoryDevice>(1000 * kChunkBytes + 512, "cow-u");  // a partial last chunk
  auto store = std::move(create_persistent_store(dev, kChunkSectors)).value();
  StoreUsage u = store->usage();
  CHECK(u.total_sectors == 1000 * 8 + 1);
  CHECK(u.allocated_sectors == 2 * 8);
  CHECK(u.metadata_sectors == 2 * 8);
  for (uint64_t i = 0; i < kPerArea; ++i) {
    auto cow = store->prepare_exception();
    REQUIRE(commit_one(*store, ChunkIndex{i}, *cow).ok());
  }
  u = store->usage();
  CHECK(u.allocated_sectors == 259 * 8);  // chunks 2..257 used; 258 is area 1, so next_free is 259
  CHECK(u.metadata_sectors == 3 * 8);     // header, area 0 and the current area 1
}

TEST_CASE("a 64 MiB store with 4 KiB chunks holds 16319 data chunks") {
  const uint64_t chunks = (64u << 20) / kChunkBytes;
  REQUIRE(documented_capacity(chunks) == 16319);
  REQUIRE(counted_capacity(chunks) == 16319);
  auto dev = std::make_shared<MemoryDevice>(64u << 20, "cow-64m");
  auto store = std::move(create_persistent_store(dev, kChunkSectors)).value();
  CHECK(prepare_until_full(*store) == 16319);
  CHECK_FALSE(store->valid());
  CHECK(store->prepare_exception().status().errnum() == EIO);
  // The last data chunk handed out is the device's last, 16383.
  CHECK(store->usage().allocated_sectors == 16384 * 8);
}

TEST_CASE("ENOSPC comes exactly when the capacity formula says, for many sizes") {
  for (uint64_t chunks = 3; chunks <= 1100; chunks += (chunks < 600 ? 1 : 37)) {
    INFO("store of " << chunks << " chunks");
    REQUIRE(documented_capacity(chunks) == counted_capacity(chunks));
    auto dev = std::make_shared<MemoryDevice>(chunks * kChunkBytes + 1000, "cow-n");
    auto store = std::move(create_persistent_store(dev, kChunkSectors)).value();
    CHECK(prepare_until_full(*store) == documented_capacity(chunks));
  }
}

TEST_CASE("invalidate: durable, and later calls fail with EIO") {
  auto dev = std::make_shared<MemoryDevice>(100 * kChunkBytes, "cow-i");
  auto store = std::move(create_persistent_store(dev, kChunkSectors)).value();
  auto cow = store->prepare_exception();
  REQUIRE(commit_one(*store, ChunkIndex{9}, *cow).ok());
  auto pending = store->prepare_exception();
  REQUIRE(pending.ok());

  REQUIRE(store->invalidate().ok());
  CHECK_FALSE(store->valid());
  CHECK(store->prepare_exception().status().errnum() == EIO);
  Status late = commit_one(*store, ChunkIndex{10}, *pending);
  CHECK(late.errnum() == EIO);
  CHECK_THAT(late.message(), Catch::Contains("cow-i") && Catch::Contains("invalid"));
  CHECK(read_chunk(*dev, 0) == header_chunk(0));

  Opened opened = open_store(dev);
  REQUIRE(opened.status.ok());
  CHECK_FALSE(opened.store->valid());
  CHECK(opened.seen.empty());
  CHECK(opened.store->prepare_exception().status().errnum() == EIO);
}

TEST_CASE("overflow then invalidate: the store reopens invalid") {
  auto dev = std::make_shared<MemoryDevice>(10 * kChunkBytes, "cow-o");
  auto store = std::move(create_persistent_store(dev, kChunkSectors)).value();
  CHECK(prepare_until_full(*store) == 8);
  REQUIRE(store->invalidate().ok());
  Opened opened = open_store(dev);
  REQUIRE(opened.status.ok());
  CHECK_FALSE(opened.store->valid());
}

TEST_CASE("commit refuses chunks that are not data chunks of the store") {
  auto dev = std::make_shared<MemoryDevice>(600 * kChunkBytes, "cow-d");
  auto store = std::move(create_persistent_store(dev, kChunkSectors)).value();
  for (uint64_t bad : {0u, 1u, 258u, 600u, 700u}) {
    INFO("chunk " << bad);
    Status s = commit_one(*store, ChunkIndex{3}, ChunkIndex{bad});
    CHECK(s.errnum() == EINVAL);
    CHECK_THAT(s.message(), Catch::Contains("cow-d") && Catch::Contains("not a data chunk"));
  }
  CHECK(store->valid());
  CHECK(read_chunk(*dev, 1) == std::vector<uint8_t>(kChunkBytes, 0));
}

TEST_CASE("prepare_exceptions reserves consecutive chunks, skipping metadata, given-back ones first") {
  auto mem = std::make_shared<MemoryDevice>(600 * kChunkBytes, "cow-n");
  auto store = std::move(create_persistent_store(mem, kChunkSectors)).value();
  const std::vector<uint64_t> order = kernel_allocation_order(300);
  auto first = store->prepare_exceptions(300);  // crosses area 1's chunk (258)
  REQUIRE(first.ok());
  std::vector<uint64_t> got;
  for (ChunkIndex c : *first) got.push_back(c.value);
  CHECK(got == order);

  for (size_t i = 10; i < 14; ++i) store->abandon_exception((*first)[i]);
  auto again = store->prepare_exceptions(6);
  REQUIRE(again.ok());
  got.clear();
  for (ChunkIndex c : *again) got.push_back(c.value);
  const std::vector<uint64_t> want = {order[10], order[11], order[12], order[13], 303, 304};
  CHECK(got == want);

  // Past the end: ENOSPC, and the store is invalid, as for one chunk.
  CHECK(store->prepare_exceptions(600).status().errnum() == ENOSPC);
  CHECK_FALSE(store->valid());
  CHECK(store->prepare_exceptions(1).status().errnum() == EIO);
}
