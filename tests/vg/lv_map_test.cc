// lv_map.h: where an LV's bytes are on its PVs, and lvm2's devices and
// seg_pe_ranges strings, over a VG built in memory.
#include "cowsnap/vg/lv_map.h"

#include <cerrno>

#include <catch2/catch.hpp>

#include "vg_builders.h"

namespace cowsnap::vg {
namespace {

using testing::linear;
using testing::lv_of;

constexpr uint64_t kMiB = uint64_t{1024} * 1024;

// 4 MiB extents; pv0 starts its data at 1 MiB, pv1 at an odd 192 KiB so a
// wrong pe_start or unit shows.
VolumeGroup test_vg() {
  VolumeGroup vg;
  vg.name = "vg";
  vg.extent_size = 8192;
  PhysicalVolume pv0;
  pv0.name = "pv0";
  pv0.pe_start = 2048;
  pv0.pe_count = 20;
  PhysicalVolume pv1 = pv0;
  pv1.name = "pv1";
  pv1.pe_start = 384;
  vg.pvs = {pv0, pv1};
  vg.lvs.push_back(lv_of("data", {linear(0, 2, "pv0", 3), linear(2, 3, "pv1", 0)}));
  Segment wide;
  wide.extent_count = 4;
  wide.stripes = {{"pv0", 5}, {"pv1", 3}};
  wide.stripe_size = 128;
  vg.lvs.push_back(lv_of("wide", {wide}));
  Segment snap;
  snap.type = "snapshot";
  snap.extent_count = 5;
  snap.chunk_size = 8;
  snap.origin = "data";
  snap.cow_store = "cow";
  vg.lvs.push_back(lv_of("cow", {linear(0, 1, "pv0", 9)}));
  vg.lvs.push_back(lv_of("snapshot0", {snap}));
  Segment pool;
  pool.type = "thin-pool";
  pool.extent_count = 1;
  vg.lvs.push_back(lv_of("pool", {pool}));
  vg.lvs.push_back(lv_of("lost", {linear(0, 1, "pv9", 0)}));
  vg.lvs.push_back(lv_of("empty", {}));
  return vg;
}

std::string path_of(const PhysicalVolume& pv) { return "/dev/" + pv.name; }

TEST_CASE("lv_map: each linear segment maps to pe_start + first_pe extents on its own PV", "[vg][map]") {
  const VolumeGroup vg = test_vg();
  auto map = linear_map(vg, "data", path_of);
  REQUIRE(map.ok());
  REQUIRE(map->size() == 2);
  CHECK((*map)[0] == LinearPiece{0, 8 * kMiB, "/dev/pv0", 1 * kMiB + 12 * kMiB});
  CHECK((*map)[1] == LinearPiece{8 * kMiB, 12 * kMiB, "/dev/pv1", uint64_t{384} * 512});

  auto cow = linear_map(vg, "cow", path_of);
  REQUIRE(cow.ok());
  CHECK(*cow == std::vector<LinearPiece>{{0, 4 * kMiB, "/dev/pv0", 1 * kMiB + 36 * kMiB}});

  // The extent size is the VG's, not a constant.
  VolumeGroup small = vg;
  small.extent_size = 2048;  // 1 MiB
  map = linear_map(small, "data", path_of);
  REQUIRE(map.ok());
  CHECK((*map)[1] == LinearPiece{2 * kMiB, 3 * kMiB, "/dev/pv1", uint64_t{384} * 512});
  CHECK((*map)[0].pv_offset_bytes == 1 * kMiB + 3 * kMiB);
}

TEST_CASE("lv_map: the device path comes from the lookup, not the metadata's hint", "[vg][map]") {
  VolumeGroup vg = test_vg();
  vg.pvs[1].device = "/dev/stale";
  PvPathLookup lookup = [](const PhysicalVolume& pv) {
    return pv.name == "pv1" ? std::string("/srv/b.img") : std::string("/srv/a.img");
  };
  auto map = linear_map(vg, "data", lookup);
  REQUIRE(map.ok());
  CHECK((*map)[0].pv_path == "/srv/a.img");
  CHECK((*map)[1].pv_path == "/srv/b.img");
}

TEST_CASE("lv_map: an LV with no segments maps to nothing", "[vg][map]") {
  auto map = linear_map(test_vg(), "empty", path_of);
  REQUIRE(map.ok());
  CHECK(map->empty());
}

TEST_CASE("lv_map: what cannot be mapped linearly is refused, saying why", "[vg][map][errors]") {
  const VolumeGroup vg = test_vg();
  struct Case {
    const char* lv;
    int errnum;
    const char* message;
  };
  const Case cases[] = {
      {"nope", ENOENT, "Failed to find logical volume \"vg/nope\""},
      {"snapshot0", EINVAL, "vg/snapshot0 is an internal snapshot LV with no data of its own"},
      {"pool", EINVAL, "vg/pool: segment type \"thin-pool\" is not supported"},
      {"wide", EINVAL, "vg/wide: striped segments with 2 stripes are not supported"},
      {"lost", EINVAL, "vg/lost uses unknown PV pv9"},
  };
  for (const Case& c : cases) {
    INFO(c.lv);
    auto map = linear_map(vg, c.lv, path_of);
    REQUIRE_FALSE(map.ok());
    CHECK(map.status().errnum() == c.errnum);
    CHECK(map.status().message() == c.message);
  }
}

TEST_CASE("lv_map: lvm2's devices field lists every stripe as PATH(first_pe)", "[vg][map][report]") {
  const VolumeGroup vg = test_vg();
  CHECK(lv_devices_string(vg, *vg.find_lv("data"), path_of) == "/dev/pv0(3),/dev/pv1(0)");
  CHECK(lv_devices_string(vg, *vg.find_lv("wide"), path_of) == "/dev/pv0(5),/dev/pv1(3)");
  // A PV the VG does not know is shown by its metadata name.
  CHECK(lv_devices_string(vg, *vg.find_lv("lost"), path_of) == "pv9(0)");
  CHECK(lv_devices_string(vg, *vg.find_lv("snapshot0"), path_of).empty());
}

TEST_CASE("lv_map: lvm2's seg_pe_ranges gives each stripe its share of the segment", "[vg][map][report]") {
  const VolumeGroup vg = test_vg();
  CHECK(lv_pe_ranges_string(vg, *vg.find_lv("data"), path_of) == "/dev/pv0:3-4 /dev/pv1:0-2");
  // 4 extents over 2 stripes: 2 on each PV.
  CHECK(lv_pe_ranges_string(vg, *vg.find_lv("wide"), path_of) == "/dev/pv0:5-6 /dev/pv1:3-4");
  CHECK(lv_pe_ranges_string(vg, *vg.find_lv("lost"), path_of) == "pv9:0-0");
  CHECK(lv_pe_ranges_string(vg, *vg.find_lv("snapshot0"), path_of).empty());
  CHECK(lv_pe_ranges_string(vg, *vg.find_lv("empty"), path_of).empty());
}

}  // namespace
}  // namespace cowsnap::vg
