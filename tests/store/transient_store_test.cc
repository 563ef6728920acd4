// The transient store: memory-only exceptions over a data device.
#include <catch2/catch.hpp>

#include <cerrno>

#include "cowsnap/io/devices.h"
#include "cowsnap/store/exception_store.h"
#include "store_test_util.h"

using namespace cowsnap;
using namespace cowsnap::testing;

TEST_CASE("transient: allocation from chunk 0 until the device is full") {
  // 10 whole chunks and a partial one.
  auto mem = std::make_shared<MemoryDevice>(10 * kChunkBytes + 1000, "cow-t");
  auto counting = std::make_shared<CountingDevice>(mem);
  auto store = std::move(create_transient_store(counting, kChunkSectors)).value();
  CHECK(store->type_code() == "N");
  CHECK(store->valid());
  CHECK(store->usage().total_sectors == (10 * kChunkBytes + 1000) / 512);
  CHECK(store->usage().allocated_sectors == 0);

  for (uint64_t i = 0; i < 10; ++i) {
    auto cow = store->prepare_exception();
    REQUIRE(cow.ok());
    CHECK(cow->value == i);
    REQUIRE(commit_one(*store, ChunkIndex{100 + i}, *cow).ok());
    CHECK(counting->counters().flushes == i + 1);
  }
  const StoreUsage u = store->usage();
  CHECK(u.allocated_sectors == 10 * 8);
  CHECK(u.metadata_sectors == 0);
  CHECK(counting->counters().writes == 0);  // nothing but data ever reaches the device

  auto full = store->prepare_exception();
  CHECK(full.status().errnum() == ENOSPC);
  CHECK_THAT(full.status().message(), Catch::Contains("cow-t"));
  CHECK_FALSE(store->valid());
  CHECK(store->prepare_exception().status().errnum() == EIO);
}

TEST_CASE("transient: invalidate is in memory only") {
  auto counting = std::make_shared<CountingDevice>(std::make_shared<MemoryDevice>(64 * kChunkBytes, "cow-t"));
  auto store = std::move(create_transient_store(counting, kChunkSectors)).value();
  auto cow = store->prepare_exception();
  REQUIRE(cow.ok());
  REQUIRE(store->invalidate().ok());
  CHECK_FALSE(store->valid());
  CHECK(commit_one(*store, ChunkIndex{1}, *cow).errnum() == EIO);
  CHECK(store->prepare_exception().status().errnum() == EIO);
  const auto c = counting->counters();
  CHECK(c.writes == 0);
  CHECK(c.flushes == 0);
}

TEST_CASE("transient: a failed flush fails the commit with EIO and invalidates") {
  auto faulty = std::make_shared<FaultyDevice>(std::make_shared<MemoryDevice>(64 * kChunkBytes, "cow-t"));
  auto store = std::move(create_transient_store(faulty, kChunkSectors)).value();
  auto cow = store->prepare_exception();
  faulty->power_cut_after(0);
  Status s = commit_one(*store, ChunkIndex{1}, *cow);
  CHECK(s.errnum() == EIO);
  CHECK_FALSE(store->valid());
}

TEST_CASE("transient: a commit of durably written data flushes nothing; a mixed one flushes") {
  auto counting = std::make_shared<CountingDevice>(std::make_shared<MemoryDevice>(64 * kChunkBytes, "cow-t"));
  auto store = std::move(create_transient_store(counting, kChunkSectors)).value();
  auto a = store->prepare_exception();
  auto b = store->prepare_exception();
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  const NewException durable{ChunkIndex{1}, *a, true};
  REQUIRE(store->commit_exceptions(std::span(&durable, 1)).ok());
  CHECK(counting->counters().flushes == 0);
  const NewException mixed[] = {{ChunkIndex{2}, *b, true}, {ChunkIndex{3}, *b, false}};
  REQUIRE(store->commit_exceptions(mixed).ok());
  CHECK(counting->counters().flushes == 1);
  REQUIRE(store->invalidate().ok());
  CHECK(store->commit_exceptions(std::span(&durable, 1)).errnum() == EIO);
}

TEST_CASE("transient: bad chunk sizes and devices smaller than a chunk are refused") {
  auto dev = std::make_shared<MemoryDevice>(64 * kChunkBytes, "cow-t");
  CHECK(create_transient_store(dev, 3).status().errnum() == EINVAL);
  auto tiny = std::make_shared<MemoryDevice>(kChunkBytes - 512, "cow-tiny");
  CHECK(create_transient_store(tiny, kChunkSectors).status().errnum() == EINVAL);
}
