// Opening a snapshot over a store written elsewhere: the table is checked
// against the origin, and duplicates resolve as the kernel's lookup does.
#include <catch2/catch.hpp>

#include <cerrno>

#include "cowsnap/dm/snapshot.h"
#include "cowsnap/io/devices.h"
#include "store/store_test_util.h"
#include "support/patterns.h"

using namespace cowsnap;
using namespace cowsnap::testing;

TEST_CASE("open_snapshot refuses an exception for an origin chunk beyond the origin's end") {
  auto real = std::make_shared<MemoryDevice>(8 * kChunkBytes, "real");
  auto cow = std::make_shared<MemoryDevice>(64 * kChunkBytes, "cow-far");
  write_store_by_hand(*cow, {{1, 2}, {8, 3}});
  auto origin = Origin::create(real, "real");
  auto snap = open_snapshot(origin, {cow, "cow-far", 'P', kChunkSectors});
  REQUIRE_FALSE(snap.ok());
  CHECK(snap.status().errnum() == EINVAL);
  CHECK_THAT(snap.status().message(),
             Catch::Contains("cow-far") && Catch::Contains("exception 1 of metadata area 0") &&
                 Catch::Contains("origin chunk 8 beyond the origin's end (8 chunks)"));
  CHECK(origin->snapshots().empty());
}

TEST_CASE("open_snapshot: of two exceptions for one origin chunk the first on disk wins, as in the kernel") {
  auto real = std::make_shared<MemoryDevice>(8 * kChunkBytes, "real");
  REQUIRE(real->write(0, pattern(0, 8 * kChunkBytes, 0)).ok());
  auto cow = std::make_shared<MemoryDevice>(64 * kChunkBytes, "cow-dup");
  write_store_by_hand(*cow, {{3, 2}, {5, 3}, {3, 4}});
  write_chunk(*cow, 2, pattern(3 * kChunkBytes, kChunkBytes, 1));
  write_chunk(*cow, 3, pattern(5 * kChunkBytes, kChunkBytes, 1));
  write_chunk(*cow, 4, pattern(3 * kChunkBytes, kChunkBytes, 2));
  auto origin = Origin::create(real, "real");
  auto snap = open_snapshot(origin, {cow, "cow-dup", 'P', kChunkSectors});
  INFO(snap.status().to_string());
  REQUIRE(snap.ok());
  CHECK((*snap)->exception_count() == 2);
  std::vector<uint8_t> chunk(kChunkBytes);
  REQUIRE((*snap)->read(3 * kChunkBytes, chunk).ok());
  CHECK(byte_diff(chunk, pattern(3 * kChunkBytes, kChunkBytes, 1)) == "");
  // The chunk the losing entry names stays allocated: new copy-outs go after it.
  REQUIRE(origin->write_origin(0, pattern(0, kChunkBytes, 9)).ok());
  std::vector<uint8_t> five(kChunkBytes);
  REQUIRE(cow->read(5 * kChunkBytes, five).ok());
  CHECK(byte_diff(five, pattern(0, kChunkBytes, 0)) == "");
}
