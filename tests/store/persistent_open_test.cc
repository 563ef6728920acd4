// Opening stores built by hand, valid and broken.
#include <catch2/catch.hpp>

#include <cerrno>

#include "cowsnap/io/devices.h"
#include "cowsnap/store/exception_store.h"
#include "store_test_util.h"

using namespace cowsnap;
using namespace cowsnap::testing;

namespace {

// `count` exceptions with scattered origin chunks, stored where the kernel
// would have allocated them.
std::vector<Mapping> kernel_style_exceptions(size_t count) {
  std::vector<Mapping> exceptions;
  const auto cows = kernel_allocation_order(count);
  for (size_t i = 0; i < count; ++i) exceptions.emplace_back((i * 7919 + 3) % 100003, cows[i]);
  return exceptions;
}

}  // namespace

TEST_CASE("open: full areas and a partly filled last area") {
  auto dev = std::make_shared<MemoryDevice>(2000 * kChunkBytes, "cow1");
  fill_device(*dev, 0xAA);  // junk past the partly filled area is never read
  // 3 full areas (256 each) + 100 entries in area 3 (chunk 772).
  const auto exceptions = kernel_style_exceptions(3 * kPerArea + 100);
  REQUIRE(exceptions.back().second == 872);
  write_store_by_hand(*dev, exceptions);

  Opened opened = open_store(dev);
  INFO(opened.status.to_string());
  REQUIRE(opened.status.ok());
  CHECK(opened.seen == exceptions);
  ExceptionStore& store = *opened.store;
  CHECK(store.valid());
  CHECK(store.geometry().chunk_sectors() == kChunkSectors);
  const StoreUsage usage = store.usage();
  CHECK(usage.total_sectors == 2000 * 8);
  CHECK(usage.allocated_sectors == 873 * 8);
  CHECK(usage.metadata_sectors == (3 + 2) * 8);
  CHECK(store.prepare_exception()->value == 873);

  // New commits continue area 3 after its 100 entries.
  REQUIRE(commit_one(store, ChunkIndex{42}, ChunkIndex{873}).ok());
  auto area3 = read_chunk(*dev, 772);
  std::vector<uint8_t> entry(16, 0);
  put_le64(entry, 0, 42);
  put_le64(entry, 8, 873);
  CHECK(std::equal(entry.begin(), entry.end(), area3.begin() + 100 * 16));
  Opened again = open_store(dev);
  REQUIRE(again.status.ok());
  CHECK(again.seen.size() == exceptions.size() + 1);
  CHECK(again.seen.back() == Mapping{42, 873});
}

TEST_CASE("open: next_free after the last full area skips the next metadata chunk") {
  auto dev = std::make_shared<MemoryDevice>(1000 * kChunkBytes, "cow1");
  // Exactly two full areas; the highest data chunk is 514, just before
  // area 2 at chunk 515.
  const auto exceptions = kernel_style_exceptions(2 * kPerArea);
  REQUIRE(exceptions.back().second == 514);
  write_store_by_hand(*dev, exceptions);

  Opened opened = open_store(dev);
  REQUIRE(opened.status.ok());
  CHECK(opened.seen.size() == 2 * kPerArea);
  const StoreUsage usage = opened.store->usage();
  CHECK(usage.allocated_sectors == 516 * 8);
  CHECK(usage.metadata_sectors == (2 + 2) * 8);
  CHECK(opened.store->prepare_exception()->value == 516);
}

TEST_CASE("open: next_free is the highest chunk + 1 even when entries are out of order") {
  auto dev = std::make_shared<MemoryDevice>(1000 * kChunkBytes, "cow1");
  write_store_by_hand(*dev, {{10, 5}, {11, 2}, {12, 3}});  // chunk 4 never committed
  Opened opened = open_store(dev);
  REQUIRE(opened.status.ok());
  CHECK(opened.seen == std::vector<Mapping>{{10, 5}, {11, 2}, {12, 3}});
  CHECK(opened.store->prepare_exception()->value == 6);
}

TEST_CASE("open: an empty store") {
  auto dev = std::make_shared<MemoryDevice>(100 * kChunkBytes, "cow1");
  write_store_by_hand(*dev, {});
  Opened opened = open_store(dev);
  REQUIRE(opened.status.ok());
  CHECK(opened.seen.empty());
  CHECK(opened.store->usage().allocated_sectors == 16);
  CHECK(opened.store->usage().metadata_sectors == 16);
  CHECK(opened.store->prepare_exception()->value == 2);
}

TEST_CASE("open: an invalid store opens, reports invalid and refuses work") {
  auto dev = std::make_shared<MemoryDevice>(100 * kChunkBytes, "cow1");
  fill_device(*dev, 0xAA);  // junk areas: an invalid store's metadata is not read
  write_chunk(*dev, 0, header_chunk(0));
  Opened opened = open_store(dev);
  INFO(opened.status.to_string());
  REQUIRE(opened.status.ok());
  CHECK(opened.seen.empty());
  CHECK_FALSE(opened.store->valid());
  auto prepared = opened.store->prepare_exception();
  CHECK(prepared.status().errnum() == EIO);
  CHECK(commit_one(*opened.store, ChunkIndex{1}, ChunkIndex{2}).errnum() == EIO);
}

TEST_CASE("open: format errors name the device and the problem") {
  auto dev = std::make_shared<MemoryDevice>(100 * kChunkBytes, "cow-errors");

  SECTION("bad magic: all zeroes") {
    Opened opened = open_store(dev);
    CHECK(opened.status.errnum() == EINVAL);
    CHECK_THAT(opened.status.message(), Catch::Contains("cow-errors") &&
                                            Catch::Contains("not a snapshot store (bad magic 0x00000000"));
  }
  SECTION("bad magic: something else") {
    write_chunk(*dev, 0, header_chunk(1, 1, kChunkSectors, 0x12345678));
    Opened opened = open_store(dev);
    CHECK(opened.status.errnum() == EINVAL);
    CHECK_THAT(opened.status.message(), Catch::Contains("bad magic 0x12345678"));
  }
  SECTION("wrong version") {
    write_chunk(*dev, 0, header_chunk(1, 2));
    Opened opened = open_store(dev);
    CHECK(opened.status.errnum() == EINVAL);
    CHECK_THAT(opened.status.message(), Catch::Contains("cow-errors") && Catch::Contains("unsupported") &&
                                            Catch::Contains("version 2"));
  }
  SECTION("chunk size mismatch") {
    write_chunk(*dev, 0, header_chunk(1, 1, 16));
    Opened opened = open_store(dev, 8);
    CHECK(opened.status.errnum() == EINVAL);
    CHECK_THAT(opened.status.message(),
               Catch::Contains("cow-errors") &&
                   Catch::Contains("chunk size mismatch: header says 16 sectors, table says 8"));
    Opened any = open_store(dev, 0);  // 0 accepts the header's
    REQUIRE(any.status.ok());
    CHECK(any.store->geometry().chunk_sectors() == 16);
  }
  SECTION("chunk size that is not a power of two") {
    write_chunk(*dev, 0, header_chunk(1, 1, 12));
    Opened opened = open_store(dev, 0);
    CHECK(opened.status.errnum() == EINVAL);
    CHECK_THAT(opened.status.message(),
               Catch::Contains("invalid chunk size") && Catch::Contains("12 sectors"));
  }
  SECTION("truncated device: a metadata area beyond the end") {
    // Area 0 full (its entries name chunks 2..257), area 1 would be at 258.
    auto small = std::make_shared<MemoryDevice>(250 * kChunkBytes, "cow-short");
    write_store_by_hand(*small, kernel_style_exceptions(kPerArea));
    Opened opened = open_store(small);
    CHECK(opened.status.errnum() == EINVAL);
    CHECK_THAT(opened.status.message(),
               Catch::Contains("cow-short") &&
                   Catch::Contains("metadata area 1 at chunk 258 is beyond the device's end") &&
                   Catch::Contains("truncated?"));
  }
  SECTION("truncated device: not even area 0") {
    auto tiny = std::make_shared<MemoryDevice>(kChunkBytes, "cow-tiny");
    write_chunk(*tiny, 0, header_chunk(1));
    Opened opened = open_store(tiny);
    CHECK(opened.status.errnum() == EINVAL);
    CHECK_THAT(opened.status.message(),
               Catch::Contains("metadata area 0 at chunk 1 is beyond the device's end"));
  }
  SECTION("an exception beyond the device's end") {
    write_store_by_hand(*dev, {{1, 2}, {2, 1000}});
    Opened opened = open_store(dev);
    CHECK(opened.status.errnum() == EINVAL);
    CHECK_THAT(opened.status.message(), Catch::Contains("cow-errors") &&
                                            Catch::Contains("maps to chunk 1000 beyond the device's end"));
  }
  SECTION("an exception naming a metadata chunk") {
    auto big = std::make_shared<MemoryDevice>(1000 * kChunkBytes, "cow-big");
    write_store_by_hand(*big, {{1, 2}, {2, 258}});
    Opened opened = open_store(big);
    CHECK(opened.status.errnum() == EINVAL);
    CHECK_THAT(opened.status.message(), Catch::Contains("maps to chunk 258, which holds metadata area 1"));
  }
}

TEST_CASE("open: a store filled to the last chunk ends its walk at the device's end") {
  // 515 chunks: areas 0 and 1, data 2..257 and 259..514; area 2 would start
  // at chunk 515, the device's end. Capacity 514 - ceil(514 / 257) = 512.
  auto dev = std::make_shared<MemoryDevice>(515 * kChunkBytes, "cow-exact");
  auto store = std::move(create_persistent_store(dev, kChunkSectors)).value();
  uint64_t committed = 0;
  for (;;) {
    auto cow = store->prepare_exception();
    if (!cow.ok()) {
      CHECK(cow.status().errnum() == ENOSPC);
      break;
    }
    REQUIRE(commit_one(*store, ChunkIndex{committed++}, *cow).ok());
  }
  CHECK(committed == 512);
  Opened opened = open_store(dev);
  INFO(opened.status.to_string());
  REQUIRE(opened.status.ok());
  CHECK(opened.seen.size() == 512);
  CHECK(opened.store->prepare_exception().status().errnum() == ENOSPC);
}

TEST_CASE("create refuses bad chunk sizes and too small devices") {
  auto dev = std::make_shared<MemoryDevice>(100 * kChunkBytes, "cow-c");
  auto bad = create_persistent_store(dev, 12);
  CHECK(bad.status().errnum() == EINVAL);
  CHECK_THAT(bad.status().message(), Catch::Contains("cow-c"));
  auto tiny = std::make_shared<MemoryDevice>(2 * kChunkBytes, "cow-2");
  auto small = create_persistent_store(tiny, kChunkSectors);
  CHECK(small.status().errnum() == EINVAL);
  CHECK_THAT(small.status().message(), Catch::Contains("cow-2") && Catch::Contains("too small"));
}

TEST_CASE("create then open round-trips every exception") {
  auto dev = std::make_shared<MemoryDevice>(2000 * kChunkBytes, "cow-rt");
  auto store = std::move(create_persistent_store(dev, kChunkSectors)).value();
  std::vector<Mapping> committed;
  for (uint64_t i = 0; i < 700; ++i) {
    auto cow = store->prepare_exception();
    REQUIRE(cow.ok());
    REQUIRE(commit_one(*store, ChunkIndex{i * 3}, *cow).ok());
    committed.emplace_back(i * 3, cow->value);
  }
  const StoreUsage before = store->usage();
  store.reset();
  Opened opened = open_store(dev);
  REQUIRE(opened.status.ok());
  CHECK(opened.seen == committed);
  const StoreUsage after = opened.store->usage();
  CHECK(after.allocated_sectors == before.allocated_sectors);
  CHECK(after.metadata_sectors == before.metadata_sectors);
  CHECK(after.total_sectors == before.total_sectors);
}

TEST_CASE("open: debris past the end marker is dropped by the next commit") {
  auto dev = std::make_shared<MemoryDevice>(600 * kChunkBytes, "cow-debris");
  write_store_by_hand(*dev, {{10, 2}, {11, 3}});
  // Entries 3.. hold junk, as an interrupted write might leave; entry 2 is
  // the end marker, so the reader must stop there.
  auto area = read_chunk(*dev, 1);
  for (size_t i = 3 * 16; i < area.size(); ++i) area[i] = 0x5A;
  write_chunk(*dev, 1, area);

  Opened opened = open_store(dev);
  REQUIRE(opened.status.ok());
  CHECK(opened.seen == std::vector<Mapping>{{10, 2}, {11, 3}});
  auto cow = opened.store->prepare_exception();
  REQUIRE(cow->value == 4);
  REQUIRE(commit_one(*opened.store, ChunkIndex{12}, *cow).ok());

  std::vector<uint8_t> expected(kChunkBytes, 0);
  const std::vector<Mapping> entries = {{10, 2}, {11, 3}, {12, 4}};
  for (size_t i = 0; i < entries.size(); ++i) {
    put_le64(expected, i * 16, entries[i].first);
    put_le64(expected, i * 16 + 8, entries[i].second);
  }
  CHECK(read_chunk(*dev, 1) == expected);
  Opened again = open_store(dev);
  REQUIRE(again.status.ok());
  CHECK(again.seen == entries);
}
