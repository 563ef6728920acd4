// allocation.h: free-extent accounting and the linear allocation policy,
// over VGs built in memory (no devices).
#include "cowsnap/vg/allocation.h"

#include <cerrno>

#include <catch2/catch.hpp>

#include "vg_builders.h"

namespace cowsnap::vg {
namespace {

using testing::linear;
using testing::lv_of;

PhysicalVolume pv_of(const std::string& name, uint64_t pe_count, bool allocatable = true) {
  PhysicalVolume pv;
  pv.name = name;
  pv.pe_start = 2048;
  pv.pe_count = pe_count;
  if (!allocatable) pv.status.clear();
  return pv;
}

// pv0: 10 extents, "a" at 2-3, "b" at 6-9 -> free 0-1 and 4-5.
// pv1: 5 extents, not allocatable (pvchange -x n), all free.
// pv2: 8 extents, "b" continues at 0-2 -> free 3-7.
VolumeGroup test_vg() {
  VolumeGroup vg;
  vg.name = "vg";
  vg.pvs = {pv_of("pv0", 10), pv_of("pv1", 5, false), pv_of("pv2", 8)};
  vg.lvs.push_back(lv_of("a", {linear(0, 2, "pv0", 2)}));
  vg.lvs.push_back(lv_of("b", {linear(0, 4, "pv0", 6), linear(4, 3, "pv2", 0)}));
  return vg;
}

TEST_CASE("allocation: free areas per allocatable PV, in PV then PE order", "[vg][alloc]") {
  const VolumeGroup vg = test_vg();
  CHECK(free_areas(vg) == std::vector<FreeArea>{{"pv0", 0, 2}, {"pv0", 4, 2}, {"pv2", 3, 5}});
  CHECK(free_extent_count(vg) == 9);
  CHECK(used_extent_count(vg, "pv0") == 6);
  CHECK(used_extent_count(vg, "pv1") == 0);
  CHECK(used_extent_count(vg, "pv2") == 3);
  CHECK(used_extent_count(vg, "pv7") == 0);
}

TEST_CASE("allocation: a striped segment uses extent_count / stripes on each PV", "[vg][alloc]") {
  VolumeGroup vg;
  vg.pvs = {pv_of("pv0", 10), pv_of("pv1", 10)};
  Segment s;
  s.extent_count = 6;
  s.stripes = {{"pv0", 1}, {"pv1", 4}};
  s.stripe_size = 128;
  vg.lvs.push_back(lv_of("wide", {s}));
  CHECK(used_extent_count(vg, "pv0") == 3);
  CHECK(used_extent_count(vg, "pv1") == 3);
  CHECK(free_areas(vg) == std::vector<FreeArea>{{"pv0", 0, 1}, {"pv0", 4, 6}, {"pv1", 0, 4}, {"pv1", 7, 3}});
}

TEST_CASE("allocation: snapshot and unknown segments take no PV extents of their own", "[vg][alloc]") {
  VolumeGroup vg;
  vg.pvs = {pv_of("pv0", 4)};
  Segment snap;
  snap.type = "snapshot";
  snap.extent_count = 4;
  snap.origin = "o";
  snap.cow_store = "c";
  Segment pool;
  pool.type = "thin-pool";
  pool.extent_count = 4;
  vg.lvs.push_back(lv_of("snapshot0", {snap}));
  vg.lvs.push_back(lv_of("pool", {pool}));
  CHECK(free_extent_count(vg) == 4);
  CHECK(used_extent_count(vg, "pv0") == 0);
}

TEST_CASE("allocation: overlapping and unsorted uses still give disjoint free areas", "[vg][alloc]") {
  VolumeGroup vg;
  vg.pvs = {pv_of("pv0", 12)};
  // Listed out of PE order, and one range inside another (broken metadata
  // must not make free space appear twice).
  vg.lvs.push_back(lv_of("late", {linear(0, 2, "pv0", 9)}));
  vg.lvs.push_back(lv_of("outer", {linear(0, 5, "pv0", 2)}));
  vg.lvs.push_back(lv_of("inner", {linear(0, 1, "pv0", 3)}));
  CHECK(free_areas(vg) == std::vector<FreeArea>{{"pv0", 0, 2}, {"pv0", 7, 2}, {"pv0", 11, 1}});
}

TEST_CASE("allocation: a new LV goes to the first free area that holds all of it", "[vg][alloc]") {
  const VolumeGroup vg = test_vg();
  const LogicalVolume fresh = lv_of("new", {});

  // Two fit the first area of pv0.
  auto two = allocate_linear(vg, fresh, 2);
  REQUIRE(two.ok());
  CHECK(*two == std::vector<Segment>{linear(0, 2, "pv0", 0)});

  // Three fit no area of pv0: contiguous on pv2 rather than split.
  auto three = allocate_linear(vg, fresh, 3);
  REQUIRE(three.ok());
  CHECK(*three == std::vector<Segment>{linear(0, 3, "pv2", 3)});

  // Five: exactly pv2's free area.
  auto five = allocate_linear(vg, fresh, 5);
  REQUIRE(five.ok());
  CHECK(*five == std::vector<Segment>{linear(0, 5, "pv2", 3)});
}

TEST_CASE("allocation: what fits no single area spans areas in PV order, never an unallocatable PV",
          "[vg][alloc]") {
  const VolumeGroup vg = test_vg();
  auto seven = allocate_linear(vg, lv_of("new", {}), 7);
  REQUIRE(seven.ok());
  CHECK(*seven ==
        std::vector<Segment>{linear(0, 2, "pv0", 0), linear(2, 2, "pv0", 4), linear(4, 3, "pv2", 3)});
  // All of it: pv1's 5 free extents do not count.
  auto nine = allocate_linear(vg, lv_of("new", {}), 9);
  REQUIRE(nine.ok());
  CHECK(nine->back() == linear(4, 5, "pv2", 3));
}

TEST_CASE("allocation: growing continues the last segment in place first", "[vg][alloc]") {
  const VolumeGroup vg = test_vg();
  const LogicalVolume& a = *vg.find_lv("a");  // pv0 2-3; 4-5 free after it

  // In place, although pv0 0-1 comes first in PV order.
  auto two = allocate_linear(vg, a, 2);
  REQUIRE(two.ok());
  CHECK(*two == std::vector<Segment>{linear(2, 2, "pv0", 4)});

  // In place as far as it goes, then the rest in one area that holds it:
  // pv0 0-1 is too small for 3, pv2 3-7 is not.
  auto five = allocate_linear(vg, a, 5);
  REQUIRE(five.ok());
  CHECK(*five == std::vector<Segment>{linear(2, 2, "pv0", 4), linear(4, 3, "pv2", 3)});

  // "b" ends at pv2 2, and pv2 3-7 is free: in place again.
  auto b = allocate_linear(vg, *vg.find_lv("b"), 4);
  REQUIRE(b.ok());
  CHECK(*b == std::vector<Segment>{linear(7, 4, "pv2", 3)});
}

TEST_CASE("allocation: an LV whose next extents are taken grows elsewhere", "[vg][alloc]") {
  VolumeGroup vg;
  vg.pvs = {pv_of("pv0", 10)};
  vg.lvs.push_back(lv_of("a", {linear(0, 2, "pv0", 0)}));
  vg.lvs.push_back(lv_of("b", {linear(0, 2, "pv0", 2)}));
  auto grown = allocate_linear(vg, *vg.find_lv("a"), 3);
  REQUIRE(grown.ok());
  CHECK(*grown == std::vector<Segment>{linear(2, 3, "pv0", 4)});
}

TEST_CASE("allocation: not enough free extents is ENOSPC with lvm2's numbers", "[vg][alloc][errors]") {
  const VolumeGroup vg = test_vg();
  auto r = allocate_linear(vg, lv_of("new", {}), 10);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().errnum() == ENOSPC);
  CHECK(r.status().message() == "Insufficient free space: 10 extents needed, but only 9 available");

  VolumeGroup full;
  full.pvs = {pv_of("pv0", 2)};
  full.lvs.push_back(lv_of("all", {linear(0, 2, "pv0", 0)}));
  auto none = allocate_linear(full, *full.find_lv("all"), 1);
  REQUIRE_FALSE(none.ok());
  CHECK(none.status().message() == "Insufficient free space: 1 extents needed, but only 0 available");
}

TEST_CASE("allocation: append_segments merges only a piece that continues the last segment", "[vg][alloc]") {
  LogicalVolume lv = lv_of("lv", {linear(0, 2, "pv0", 4)});
  append_segments(lv, {linear(2, 3, "pv0", 6)});  // pv0 6 follows pv0 4-5
  CHECK(lv.segments == std::vector<Segment>{linear(0, 5, "pv0", 4)});

  append_segments(lv, {linear(5, 1, "pv1", 9)});   // another PV
  append_segments(lv, {linear(6, 1, "pv1", 20)});  // same PV, not adjacent
  CHECK(lv.segments ==
        std::vector<Segment>{linear(0, 5, "pv0", 4), linear(5, 1, "pv1", 9), linear(6, 1, "pv1", 20)});

  // A segment carrying keys cowsnap does not model is kept as it is.
  LogicalVolume odd = lv_of("odd", {linear(0, 1, "pv0", 0)});
  odd.segments[0].extra.entries.push_back(ConfigEntry{});
  append_segments(odd, {linear(1, 1, "pv0", 1)});
  CHECK(odd.segments.size() == 2);

  LogicalVolume empty = lv_of("e", {});
  append_segments(empty, {linear(0, 2, "pv2", 0), linear(2, 1, "pv2", 2)});
  CHECK(empty.segments == std::vector<Segment>{linear(0, 3, "pv2", 0)});
}

}  // namespace
}  // namespace cowsnap::vg
