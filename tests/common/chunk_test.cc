#include <catch2/catch.hpp>

#include <cerrno>

#include "cowsnap/common/chunk.h"

using namespace cowsnap;

TEST_CASE("chunk sizes: powers of two from 4 KiB to 512 KiB") {
  for (uint64_t sectors = 8; sectors <= 1024; sectors *= 2) CHECK(validate_chunk_sectors(sectors).ok());
  for (uint64_t sectors : {0ULL, 1ULL, 4ULL, 12ULL, 24ULL, 2048ULL}) {
    Status s = validate_chunk_sectors(sectors);
    CHECK(s.errnum() == EINVAL);
    CHECK_THAT(s.message(), Catch::Contains("power of two from 4 KiB to 512 KiB"));
  }
}

TEST_CASE("ChunkGeometry converts bytes and chunks") {
  ChunkGeometry g(8);
  CHECK(g.chunk_bytes() == 4096);
  CHECK(g.chunk_of(4095).value == 0);
  CHECK(g.chunk_of(4096).value == 1);
  CHECK(g.offset_of(ChunkIndex{3}) == 12288);
  CHECK(g.offset_in_chunk(12289) == 1);
  CHECK(g.chunks_in(64u << 20) == 16384);
}
