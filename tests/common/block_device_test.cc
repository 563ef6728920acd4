#include <catch2/catch.hpp>

#include <cstdint>
#include <span>
#include <vector>

#include "cowsnap/common/block_device.h"

TEST_CASE("gather_range picks the pieces of a byte range of a gather list") {
  const std::vector<uint8_t> a(10, 1), b(5, 2), c(20, 3);
  const std::span<const uint8_t> pieces[] = {a, b, c};
  CHECK(cowsnap::gather_bytes(pieces) == 35);
  auto r = cowsnap::gather_range(pieces, 8, 10);  // 2 of a, all of b, 3 of c
  REQUIRE(r.size() == 3);
  CHECK(r[0].data() == a.data() + 8);
  CHECK(r[0].size() == 2);
  CHECK(r[1].data() == b.data());
  CHECK(r[1].size() == 5);
  CHECK(r[2].data() == c.data());
  CHECK(r[2].size() == 3);
  r = cowsnap::gather_range(pieces, 15, 20);
  REQUIRE(r.size() == 1);
  CHECK(r[0].data() == c.data());
  CHECK(r[0].size() == 20);
  CHECK(cowsnap::gather_range(pieces, 35, 0).empty());
}
