// Exception tables that no writer can have produced are refused with EINVAL,
// naming the store, the metadata area and the entry; debris a torn write
// can leave is not mistaken for corruption.
#include <catch2/catch.hpp>

#include <cerrno>

#include "cowsnap/io/devices.h"
#include "cowsnap/store/exception_store.h"
#include "store_test_util.h"

using namespace cowsnap;
using namespace cowsnap::testing;

TEST_CASE("open: corrupt exception tables are refused, naming store, area and entry") {
  auto dev = std::make_shared<MemoryDevice>(1000 * kChunkBytes, "cow-bad");

  SECTION("two entries share a COW chunk") {
    write_store_by_hand(*dev, {{1, 2}, {2, 3}, {3, 2}});
    Opened opened = open_store(dev);
    CHECK(opened.status.errnum() == EINVAL);
    CHECK_THAT(opened.status.message(),
               Catch::Contains("cow-bad") && Catch::Contains("exception 2 of metadata area 0") &&
                   Catch::Contains("chunk 2") && Catch::Contains("exception 0 of metadata area 0"));
  }
  SECTION("two entries share a COW chunk across areas") {
    std::vector<Mapping> exceptions;
    for (uint64_t c : kernel_allocation_order(kPerArea + 1)) exceptions.emplace_back(c, c);
    exceptions.back().second = 5;
    write_store_by_hand(*dev, exceptions);
    Opened opened = open_store(dev);
    CHECK(opened.status.errnum() == EINVAL);
    CHECK_THAT(opened.status.message(), Catch::Contains("exception 0 of metadata area 1") &&
                                            Catch::Contains("exception 3 of metadata area 0"));
  }
  SECTION("an entry naming the header or area 0") {
    write_store_by_hand(*dev, {{1, 2}, {2, 1}});
    Opened opened = open_store(dev);
    CHECK(opened.status.errnum() == EINVAL);
    CHECK_THAT(
        opened.status.message(),
        Catch::Contains("exception 1 of metadata area 0 maps to chunk 1, which holds metadata area 0"));
  }
  SECTION("an end marker with an origin chunk: new_chunk 0 but old_chunk set") {
    write_store_by_hand(*dev, {{1, 2}, {7, 0}});
    Opened opened = open_store(dev);
    CHECK(opened.status.errnum() == EINVAL);
    CHECK_THAT(opened.status.message(), Catch::Contains("exception 1 of metadata area 0") &&
                                            Catch::Contains("origin chunk 7 to chunk 0"));
  }
  SECTION("an origin chunk beyond the origin's end") {
    write_store_by_hand(*dev, {{1, 2}, {10, 3}});
    int visited = 0;
    auto store = open_persistent_store(dev, kChunkSectors, 10 * kChunkBytes,
                                       [&](ChunkIndex, ChunkIndex) { ++visited; });
    REQUIRE_FALSE(store.ok());
    CHECK(store.status().errnum() == EINVAL);
    CHECK_THAT(store.status().message(),
               Catch::Contains("cow-bad") && Catch::Contains("exception 1 of metadata area 0") &&
                   Catch::Contains("origin chunk 10 beyond the origin's end (10 chunks)"));
    // Without the origin's size the store cannot tell.
    CHECK(open_store(dev).status.ok());
    // A last origin chunk that is partly past the origin's end is fine.
    CHECK(open_persistent_store(dev, kChunkSectors, 10 * kChunkBytes + 512, {}).ok());
  }
}

TEST_CASE("open: entries past the end marker are debris, not corruption") {
  // A torn multi-sector write can land a later sector of entries and not
  // the one holding the end marker; the walk stops at the marker.
  auto dev = std::make_shared<MemoryDevice>(100 * kChunkBytes, "cow-torn");
  write_store_by_hand(*dev, {{1, 2}});
  std::vector<uint8_t> area = read_chunk(*dev, 1);
  put_le64(area, 40 * 16, 9);  // entry 40, in the area's second sector
  put_le64(area, 40 * 16 + 8, 2);
  write_chunk(*dev, 1, area);
  Opened opened = open_store(dev);
  REQUIRE(opened.status.ok());
  CHECK(opened.seen == std::vector<Mapping>{{1, 2}});
}
