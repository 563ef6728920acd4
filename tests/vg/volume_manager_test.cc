#include "cowsnap/vg/volume_manager.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <fstream>
#include <thread>

#include "cowsnap/io/devices.h"
#include "cowsnap/vg/allocation.h"
#include "cowsnap/vg/lvm_id.h"
#include "cowsnap/vg/vg_commit.h"
#include "vg_test_util.h"

namespace cowsnap::vg {
namespace {

using ::cowsnap::testing::TempDir;

constexpr uint64_t kMiB = 1024 * 1024;

VolumeManager open_vm(const TempDir& dir) {
  VolumeManagerOptions opts;
  opts.host_name = "testhost";
  opts.clock = [] { return int64_t{1795718806}; };
  auto vm = VolumeManager::open(dir / "root", opts);
  REQUIRE(vm.ok());
  return std::move(*vm);
}

// The bytes of a file, for "nothing changed" checks.
std::string file_bytes(const std::string& path, uint64_t length) {
  std::ifstream in(path, std::ios::binary);
  std::string s(length, '\0');
  in.read(s.data(), static_cast<std::streamsize>(length));
  return s;
}

TEST_CASE("seed numbers: 6625 MiB PV, -s 32M, 207 extents, 64M = 2 extents", "[vg][vm][seed]") {
  TempDir dir;
  VolumeManager vm = open_vm(dir);
  const std::string pv = dir / "pv0.img";
  REQUIRE(vm.pvcreate(pv, 6625 * kMiB).ok());
  struct stat st {};
  REQUIRE(::stat(pv.c_str(), &st) == 0);
  CHECK(static_cast<uint64_t>(st.st_size) == 6625 * kMiB);
  CHECK(static_cast<uint64_t>(st.st_blocks) * 512 < 4 * kMiB);  // sparse

  auto vg = vm.vgcreate("vgsrv", {pv}, 65536);
  REQUIRE(vg.ok());
  CHECK(vg->vg.pvs[0].pe_count == 207);
  CHECK(vg->vg.pvs[0].pe_start == 2048);
  CHECK(vg->vg.pvs[0].dev_size == 13568000);
  CHECK(vg->vg.seqno == 1);

  const uint64_t extents = extents_for_bytes(vg->vg, 64 * kMiB);
  CHECK(extents == 2);
  auto lv = vm.lvcreate("vgsrv", "b64m", extents);
  REQUIRE(lv.ok());
  CHECK(lv->vg.seqno == 2);
  auto s1 = vm.lvcreate_snapshot("vgsrv", "b64m", "sb64m", extents_for_bytes(lv->vg, 32 * kMiB));
  REQUIRE(s1.ok());
  auto s2 = vm.lvcreate_snapshot("vgsrv", "b64m", "sb64m2", 2);
  REQUIRE(s2.ok());
  CHECK(s2->notices.empty());

  auto read = vm.read_vg("vgsrv");
  REQUIRE(read.ok());
  const VolumeGroup& v = read->vg;
  CHECK(v.seqno == 4);
  CHECK(free_extent_count(v) == 207 - 2 - 1 - 2);
  CHECK(lv_role(v, "b64m") == LvRole::kOrigin);
  auto snaps = snapshots_of(v, "b64m");
  REQUIRE(snaps.size() == 2);
  CHECK(snaps[0].internal_lv == "snapshot0");
  CHECK(snaps[0].cow_lv == "sb64m");
  CHECK(snaps[1].internal_lv == "snapshot1");
  CHECK(snaps[1].cow_lv == "sb64m2");
  CHECK(snaps[1].chunk_size == 8);
  CHECK(snaps[1].origin_extents == 2);
  CHECK(v.find_lv("sb64m")->status == std::vector<std::string>{"READ", "WRITE"});
  CHECK(v.find_lv("snapshot0")->status == std::vector<std::string>{"READ", "WRITE", "VISIBLE"});

  auto map = vm.lv_map("vgsrv", "sb64m2");
  REQUIRE(map.ok());
  REQUIRE(map->size() == 1);
  CHECK((*map)[0].pv_path == pv);
  CHECK((*map)[0].pv_offset_bytes == kMiB + 3 * 32 * kMiB);
  CHECK((*map)[0].length_bytes == 64 * kMiB);
}

TEST_CASE("operations: rename, resize, remove, vgextend spanning PVs", "[vg][vm]") {
  TempDir dir;
  VolumeManager vm = open_vm(dir);
  REQUIRE(vm.pvcreate(dir / "a.img", 64 * kMiB).ok());
  REQUIRE(vm.pvcreate(dir / "b.img", 64 * kMiB).ok());
  REQUIRE(vm.vgcreate("vg", {dir / "a.img"}).ok());  // 4 MiB extents: 15 on a 64 MiB PV
  CHECK(vm.read_vg("vg")->vg.pvs[0].pe_count == 15);
  REQUIRE(vm.lvcreate("vg", "one", 4).ok());
  REQUIRE(vm.lvcreate("vg", "two", 4).ok());
  REQUIRE(vm.lvremove("vg", "one").ok());  // leaves a hole at 0-3

  // Contiguous when possible: 3 extents fit the hole.
  auto three = vm.lvcreate("vg", "three", 3);
  REQUIRE(three.ok());
  CHECK(three->vg.find_lv("three")->segments.size() == 1);
  CHECK(three->vg.find_lv("three")->segments[0].stripes[0].first_pe == 0);

  // Grow in place where the next extents are free, then elsewhere.
  auto grown = vm.lvresize("vg", "two", 6);
  REQUIRE(grown.ok());
  REQUIRE(grown->vg.find_lv("two")->segments.size() == 1);
  CHECK(grown->vg.find_lv("two")->extent_count() == 6);

  // 15 - 3 - 6 = 6 free in two areas (1 at pe 3, 5 at 10-14); 7 is too many.
  auto too_big = vm.lvcreate("vg", "big", 7);
  REQUIRE(!too_big.ok());
  CHECK(too_big.status().errnum() == ENOSPC);
  CHECK(too_big.status().message() == "Insufficient free space: 7 extents needed, but only 6 available");

  // With a second PV the LV spans free areas and PVs.
  REQUIRE(vm.vgextend("vg", {dir / "b.img"}).ok());
  auto big = vm.lvcreate("vg", "big", 20);
  REQUIRE(big.ok());
  const LogicalVolume* b = big->vg.find_lv("big");
  CHECK(b->extent_count() == 20);
  CHECK(b->segments.size() == 3);
  CHECK(validate_vg(big->vg).ok());
  auto map = vm.lv_map("vg", "big");
  REQUIRE(map.ok());
  uint64_t total = 0;
  for (const LinearPiece& p : *map) {
    CHECK(p.lv_offset_bytes == total);
    total += p.length_bytes;
  }
  CHECK(total == 20 * 4 * kMiB);

  auto renamed = vm.lvrename("vg", "big", "huge");
  REQUIRE(renamed.ok());
  CHECK(renamed->vg.find_lv("huge") != nullptr);
  CHECK(vm.lvrename("vg", "huge", "two").status().errnum() == EEXIST);

  // Shrinking a plain LV frees its tail.
  auto shrunk = vm.lvresize("vg", "huge", 2);
  REQUIRE(shrunk.ok());
  CHECK(shrunk->vg.find_lv("huge")->extent_count() == 2);

  CHECK(vm.vgremove("vg").errnum() == EBUSY);
  REQUIRE(vm.vgremove("vg", true).ok());
  CHECK(vm.read_vg("vg").status().errnum() == ENOENT);
  // Its PVs are orphans again and can make a new VG.
  REQUIRE(vm.vgcreate("vg2", {dir / "a.img", dir / "b.img"}).ok());
}

TEST_CASE("snapshots: rename keeps references, remove takes both LVs, grow the COW", "[vg][vm][snapshot]") {
  TempDir dir;
  VolumeManager vm = open_vm(dir);
  REQUIRE(vm.pvcreate(dir / "pv.img", 256 * kMiB).ok());
  REQUIRE(vm.vgcreate("vg", {dir / "pv.img"}).ok());
  REQUIRE(vm.lvcreate("vg", "origin", 4).ok());
  REQUIRE(vm.lvcreate_snapshot("vg", "origin", "snap", 1, 16).ok());

  auto r = vm.lvrename("vg", "origin", "data");
  REQUIRE(r.ok());
  auto refs = snapshots_of(r->vg, "data");
  REQUIRE(refs.size() == 1);
  CHECK(refs[0].cow_lv == "snap");
  r = vm.lvrename("vg", "snap", "snap2");
  REQUIRE(r.ok());
  CHECK(snapshots_of(r->vg, "data")[0].cow_lv == "snap2");
  CHECK(vm.lvrename("vg", "snapshot0", "x").status().errnum() == EINVAL);

  auto grown = vm.lvresize("vg", "snap2", 3);
  REQUIRE(grown.ok());
  CHECK(grown->vg.find_lv("snap2")->extent_count() == 3);
  CHECK(grown->vg.find_lv("snapshot0")->segments[0].extent_count == 4);  // still the origin's size
  CHECK(vm.lvresize("vg", "snap2", 2).status().errnum() == EINVAL);
  CHECK(vm.lvresize("vg", "data", 8).status().errnum() == EBUSY);

  // The COW size is trimmed to what can ever be used.
  auto big = vm.lvcreate_snapshot("vg", "data", "full", 40);
  REQUIRE(big.ok());
  REQUIRE(big->notices.size() == 1);
  CHECK(big->notices[0].find("Reducing COW size") != std::string::npos);
  CHECK(big->vg.find_lv("full")->extent_count() == cow_max_extents(big->vg, 4, 8));
  CHECK(big->vg.find_lv("full")->extent_count() == 5);
  // ...and so is a COW grown by lvresize, as lvm2 does ("Reached maximum
  // COW size"); at the maximum already, growing it is no change.
  REQUIRE(vm.lvcreate_snapshot("vg", "data", "part", 2).ok());
  auto capped = vm.lvresize("vg", "part", 9);
  REQUIRE(capped.ok());
  CHECK(capped->vg.find_lv("part")->extent_count() == 5);
  REQUIRE(capped->notices.size() == 1);
  CHECK(capped->notices[0] == "Reached maximum COW size 20.00 MiB (5 extents).");
  CHECK(vm.lvresize("vg", "part", 6).status().message() ==
        "New size (5 extents) matches existing size (5 extents).");
  REQUIRE(vm.lvremove("vg", "part").ok());

  auto removed = vm.lvremove("vg", "snap2");
  REQUIRE(removed.ok());
  CHECK(removed->vg.find_lv("snap2") == nullptr);
  CHECK(removed->vg.find_lv("snapshot0") == nullptr);
  CHECK(removed->vg.find_lv("snapshot1") != nullptr);

  auto refused = vm.lvremove("vg", "data");
  REQUIRE(!refused.ok());
  CHECK(refused.status().errnum() == EBUSY);
  CHECK(refused.status().message().find("has 1 snapshot(s) (full)") != std::string::npos);
  auto forced = vm.lvremove("vg", "data", true);
  REQUIRE(forced.ok());
  CHECK(forced->vg.lvs.empty());
  CHECK(free_extent_count(forced->vg) == forced->vg.pe_total());
}

// What lvm2 2.03.16 wrote for `lvcreate -s -pr` and `lvchange -p` (its
// vgcfgbackup): the COW LV's status is ["READ"], a read-only plain LV's
// ["READ", "VISIBLE"]; a change to the permission in force is refused.
TEST_CASE("permissions: lvcreate -p r, lvchange -p r|rw", "[vg][vm][permission]") {
  TempDir dir;
  VolumeManager vm = open_vm(dir);
  const std::string pv = dir / "pv0.img";
  REQUIRE(vm.pvcreate(pv, 64 * kMiB).ok());
  REQUIRE(vm.vgcreate("vro", {pv}, 8192).ok());
  REQUIRE(vm.lvcreate("vro", "o", 4).ok());
  auto snap = vm.lvcreate_snapshot("vro", "o", "s", 2, kDefaultChunkSectors, LvPermission::kReadOnly);
  REQUIRE(snap.ok());
  CHECK(snap->vg.find_lv("s")->status == std::vector<std::string>{"READ"});
  auto plain = vm.lvcreate("vro", "plainro", 2, LvPermission::kReadOnly);
  REQUIRE(plain.ok());
  CHECK(plain->vg.find_lv("plainro")->status == std::vector<std::string>{"READ", "VISIBLE"});
  CHECK(plain->vg.find_lv("o")->status == std::vector<std::string>{"READ", "WRITE", "VISIBLE"});

  auto again = vm.lvchange_permission("vro", "s", LvPermission::kReadOnly);
  REQUIRE_FALSE(again.ok());
  CHECK(again.status().errnum() == EEXIST);
  CHECK(again.status().message() == "Logical volume \"vro/s\" is already read only.");
  auto rw = vm.lvchange_permission("vro", "s", LvPermission::kReadWrite);
  REQUIRE(rw.ok());
  CHECK(rw->vg.find_lv("s")->status == std::vector<std::string>{"READ", "WRITE"});
  auto rw_again = vm.lvchange_permission("vro", "s", LvPermission::kReadWrite);
  REQUIRE_FALSE(rw_again.ok());
  CHECK(rw_again.status().message() == "Logical volume vro/s is already writable.");
  auto origin_ro = vm.lvchange_permission("vro", "o", LvPermission::kReadOnly);
  REQUIRE(origin_ro.ok());
  CHECK(origin_ro->vg.find_lv("o")->status == std::vector<std::string>{"READ", "VISIBLE"});
  // The internal snapshotN LV is not the user's to change.
  auto internal = vm.lvchange_permission("vro", "snapshot0", LvPermission::kReadOnly);
  REQUIRE_FALSE(internal.ok());
  CHECK(internal.status().errnum() == ENOENT);
  // Read back from the PV: the words stay.
  auto disk = vm.read_vg("vro");
  REQUIRE(disk.ok());
  CHECK(disk->vg.find_lv("plainro")->status == std::vector<std::string>{"READ", "VISIBLE"});
  CHECK(disk->vg.find_lv("s")->status == std::vector<std::string>{"READ", "WRITE"});
}

TEST_CASE("error catalogue", "[vg][vm][errors]") {
  TempDir dir;
  VolumeManager vm = open_vm(dir);
  const std::string pv = dir / "pv.img";
  REQUIRE(vm.pvcreate(pv, 64 * kMiB).ok());

  SECTION("not a PV") {
    const std::string plain = dir / "plain.img";
    { std::ofstream(plain).put('x'); }
    ::truncate(plain.c_str(), 8 * kMiB);
    REQUIRE(vm.add_device(plain).ok());
    auto r = vm.vgcreate("vg", {plain});
    REQUIRE(!r.ok());
    CHECK(r.status().errnum() == ENODATA);
    CHECK(r.status().message() == plain + ": not an LVM2 PV: no label in sectors 0-3");
  }
  SECTION("PV already a PV / already in a VG") {
    CHECK(vm.pvcreate(pv, 64 * kMiB).status().errnum() == EEXIST);
    REQUIRE(vm.vgcreate("vg", {pv}).ok());
    auto again = vm.pvcreate(pv, 64 * kMiB);
    CHECK(again.status().errnum() == EEXIST);
    CHECK(again.status().message() ==
          "Can't initialize physical volume \"" + pv + "\" of volume group \"vg\" without -ff");
    auto other = vm.vgcreate("vg2", {pv});
    CHECK(other.status().errnum() == EBUSY);
    CHECK(other.status().message() == "Physical volume '" + pv + "' is already in volume group 'vg'");
    CHECK(vm.pvremove(pv).errnum() == EBUSY);
  }
  SECTION("bad names, duplicates, unknown VG/LV") {
    REQUIRE(vm.vgcreate("vg", {pv}).ok());
    CHECK(vm.vgcreate("vg", {pv}).status().errnum() == EEXIST);
    CHECK(vm.vgcreate("bad name", {pv}).status().errnum() == EINVAL);
    CHECK(vm.lvcreate("vg", "snapshot3", 1).status().errnum() == EINVAL);
    CHECK(vm.lvcreate("vg", "x_tmeta", 1).status().errnum() == EINVAL);
    REQUIRE(vm.lvcreate("vg", "lv", 1).ok());
    auto dup = vm.lvcreate("vg", "lv", 1);
    CHECK(dup.status().errnum() == EEXIST);
    CHECK(dup.status().message() == "Logical volume \"lv\" already exists in volume group \"vg\"");
    auto novg = vm.lvcreate("nope", "lv", 1);
    CHECK(novg.status().errnum() == ENOENT);
    CHECK(novg.status().message() == "Volume group \"nope\" not found");
    auto nolv = vm.lvremove("vg", "nope");
    CHECK(nolv.status().errnum() == ENOENT);
    CHECK(nolv.status().message() == "Failed to find logical volume \"vg/nope\"");
    CHECK(vm.vgcreate("vg3", {pv}, 3 * 1024 / 512).status().message() ==
          "Physical Extent size must be a multiple of 128.00 KiB when not a power of 2.");
  }
  SECTION("snapshots: of a snapshot, bad chunk size, too small") {
    REQUIRE(vm.vgcreate("vg", {pv}).ok());
    REQUIRE(vm.lvcreate("vg", "o", 2).ok());
    REQUIRE(vm.lvcreate_snapshot("vg", "o", "s", 1).ok());
    auto ss = vm.lvcreate_snapshot("vg", "s", "ss", 1);
    CHECK(ss.status().errnum() == EINVAL);
    CHECK(ss.status().message() == "Snapshots of snapshots are not supported.");
    CHECK(vm.lvcreate_snapshot("vg", "snapshot0", "ss", 1).status().errnum() == EINVAL);
    for (uint64_t chunk : {0ULL, 4ULL, 12ULL, 2048ULL}) {
      INFO(chunk);
      auto r = vm.lvcreate_snapshot("vg", "o", "s2", 1, chunk);
      CHECK(r.status().errnum() == EINVAL);
      CHECK(r.status().message().find("Chunk size must be a power of 2") == 0);
    }
    REQUIRE(vm.pvcreate(dir / "big.img", 1024 * kMiB).ok());
    REQUIRE(vm.vgcreate("vgs", {dir / "big.img"}, 2048).ok());  // 1 MiB extents
    REQUIRE(vm.lvcreate("vgs", "o", 8).ok());
    auto small = vm.lvcreate_snapshot("vgs", "o", "s", 1, 1024);  // 1 MiB < 3 x 512 KiB
    CHECK(small.status().errnum() == EINVAL);
    CHECK(small.status().message().find("Snapshot volume cannot be smaller than 3 chunks") == 0);
    CHECK(vm.lvremove("vg", "snapshot0").status().errnum() == EINVAL);
  }
  SECTION("checksum mismatch: a flipped byte in the metadata text") {
    REQUIRE(vm.vgcreate("vg", {pv}).ok());
    auto dev = open_pv_device(pv, false).value();
    const PvOnDisk on = read_pv(*dev, pv).value();
    const RawLocn r = on.mdas[0].header.raw_locns[0];
    std::array<uint8_t, 1> b{};
    REQUIRE(dev->read(on.mdas[0].header.start + r.offset + 10, b).ok());
    b[0] ^= 0x01;
    REQUIRE(dev->write(on.mdas[0].header.start + r.offset + 10, b).ok());
    auto scan = vm.scan();
    REQUIRE(scan.ok());
    // Still a PV; its metadata area is bad, said in lvm2's words.
    CHECK(scan->devices[0].status.ok());
    CHECK(scan->devices[0].warnings.at(0) ==
          fmt::format("WARNING: Checksum error on {} at offset {}.", pv, on.mdas[0].header.start + r.offset));
    CHECK(vm.lvcreate("vg", "lv", 1).status().errnum() == ENOENT);
  }
  SECTION("checksum mismatch: a flipped byte in the label") {
    auto dev = open_pv_device(pv, false).value();
    std::array<uint8_t, 1> b{};
    REQUIRE(dev->read(512 + 40, b).ok());
    b[0] ^= 0x01;
    REQUIRE(dev->write(512 + 40, b).ok());
    CHECK(vm.vgcreate("vg", {pv}).status().message() == pv + ": label checksum mismatch");
  }
  SECTION("truncated PV") {
    REQUIRE(vm.vgcreate("vg", {pv}).ok());
    REQUIRE(::truncate(pv.c_str(), 32 * kMiB) == 0);
    auto r = vm.read_vg("vg");
    CHECK(r.status().errnum() == ENOENT);
    auto scan = vm.scan();
    CHECK(scan->devices[0].status.message() ==
          pv + ": truncated: device is 33554432 bytes, header says 67108864");
  }
  SECTION("a failed operation leaves the disk unchanged") {
    REQUIRE(vm.vgcreate("vg", {pv}).ok());
    REQUIRE(vm.lvcreate("vg", "lv", 2).ok());
    const std::string before = file_bytes(pv, 2 * kMiB);
    CHECK(!vm.lvcreate("vg", "big", 1000).ok());
    CHECK(!vm.lvcreate("vg", "lv", 1).ok());
    CHECK(!vm.lvremove("vg", "nope").ok());
    CHECK(!vm.lvcreate_snapshot("vg", "lv", "s", 1, 3).ok());
    CHECK(file_bytes(pv, 2 * kMiB) == before);
  }
}

// Commits the VG's metadata again with its PVs renamed (`names[i]` for the
// i-th PV), as another writer of the metadata might have left them.
void rename_pvs(VolumeManager& vm, const std::string& vg_name, const std::vector<std::string>& names) {
  VgOnDisk v = vm.read_vg(vg_name).value();
  REQUIRE(v.vg.pvs.size() == names.size());
  std::map<std::string, std::string> new_name;
  std::map<std::string, std::string> paths;
  for (size_t i = 0; i < names.size(); ++i) {
    PhysicalVolume& p = v.vg.pvs[i];
    new_name[p.name] = names[i];
    paths[names[i]] = v.pv_paths.at(p.name);
    p.name = names[i];
  }
  for (LogicalVolume& lv : v.vg.lvs) {
    for (Segment& s : lv.segments) {
      for (Stripe& st : s.stripes) st.pv_name = new_name.at(st.pv_name);
    }
  }
  v.vg.seqno += 1;
  REQUIRE(validate_vg(v.vg).ok());
  auto pvs = open_pvs_for_commit(v.vg, paths);
  REQUIRE(pvs.ok());
  REQUIRE(commit_vg_text(*pvs, vg_to_text(v.vg, TextStyle::kDisk, {"renamed", "h", 1})).ok());
  REQUIRE(vm.read_vg(vg_name)->vg.pvs[0].name == names[0]);
}

std::vector<std::string> pv_names(const VolumeGroup& vg) {
  std::vector<std::string> out;
  for (const PhysicalVolume& p : vg.pvs) out.push_back(p.name);
  return out;
}

TEST_CASE("vgextend: a new PV is numbered after the highest pvN, whatever names the metadata holds",
          "[vg][vm][pvname]") {
  TempDir dir;
  VolumeManager vm = open_vm(dir);
  for (const char* f : {"a.img", "b.img", "c.img"}) REQUIRE(vm.pvcreate(dir / f, 64 * kMiB).ok());

  SECTION("ordinary names: one past the highest, gaps are not reused, leading zeros are numbers") {
    REQUIRE(vm.vgcreate("vg", {dir / "a.img", dir / "b.img"}).ok());
    rename_pvs(vm, "vg", {"pv07", "pv2"});
    auto r = vm.vgextend("vg", {dir / "c.img"});
    REQUIRE(r.ok());
    CHECK(pv_names(r->vg) == std::vector<std::string>{"pv07", "pv2", "pv8"});
  }
  SECTION("a number too large for 64 bits is passed over") {
    REQUIRE(vm.vgcreate("vg", {dir / "a.img"}).ok());
    REQUIRE(vm.lvcreate("vg", "lv", 2).ok());
    rename_pvs(vm, "vg", {"pv99999999999999999999999"});
    auto r = vm.vgextend("vg", {dir / "b.img", dir / "c.img"});
    REQUIRE(r.ok());
    CHECK(pv_names(r->vg) == std::vector<std::string>{"pv99999999999999999999999", "pv0", "pv1"});
    auto read = vm.read_vg("vg");
    REQUIRE(read.ok());
    CHECK(read->missing_pvs.empty());
    CHECK(read->vg.find_lv("lv")->segments[0].stripes[0].pv_name == "pv99999999999999999999999");
    CHECK(vm.lvcreate("vg", "spanning", 30).ok());
  }
  SECTION("the largest 64-bit number has no successor and is passed over") {
    REQUIRE(vm.vgcreate("vg", {dir / "a.img", dir / "b.img"}).ok());
    rename_pvs(vm, "vg", {"pv18446744073709551615", "pv3"});
    auto r = vm.vgextend("vg", {dir / "c.img"});
    REQUIRE(r.ok());
    CHECK(pv_names(r->vg) == std::vector<std::string>{"pv18446744073709551615", "pv3", "pv4"});
  }
  SECTION("no number left after the highest: a clear error, and nothing changes") {
    REQUIRE(vm.vgcreate("vg", {dir / "a.img", dir / "b.img"}).ok());
    rename_pvs(vm, "vg", {"pv0", "pv18446744073709551614"});
    const VolumeGroup before = vm.read_vg("vg")->vg;
    auto r = vm.vgextend("vg", {dir / "c.img"});
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().errnum() == EINVAL);
    CHECK(r.status().message() ==
          "Cannot add a physical volume to volume group \"vg\": no PV number is left after "
          "pv18446744073709551614");
    CHECK(vm.read_vg("vg")->vg == before);
    CHECK(vm.vgcreate("vg2", {dir / "c.img"}).ok());  // still an orphan
  }
}

TEST_CASE("torn metadata write: the previous commit stays in force", "[vg][vm][crash]") {
  TempDir dir;
  VolumeManager vm = open_vm(dir);
  const std::string pv = dir / "pv.img";
  REQUIRE(vm.pvcreate(pv, 64 * kMiB).ok());
  REQUIRE(vm.vgcreate("vg", {pv}).ok());
  REQUIRE(vm.lvcreate("vg", "lv", 2).ok());
  const VolumeGroup before = vm.read_vg("vg")->vg;

  // Simulate a crash between the two steps: the new text reaches the disk,
  // the header does not.
  VolumeGroup next = before;
  next.seqno += 1;
  next.lvs.clear();
  auto dev = open_pv_device(pv, false).value();
  const PvOnDisk on = read_pv(*dev, pv).value();
  REQUIRE(
      write_metadata_text(*dev, on.mdas[0].header, vg_to_text(next, TextStyle::kDisk, {"torn", "h", 1}), pv)
          .ok());
  auto after = vm.read_vg("vg");
  REQUIRE(after.ok());
  CHECK(after->vg == before);
  // And the next real commit goes on from there.
  auto more = vm.lvcreate("vg", "lv2", 1);
  REQUIRE(more.ok());
  CHECK(more->vg.seqno == before.seqno + 1);
  CHECK(vm.read_vg("vg")->vg.find_lv("lv") != nullptr);
}

TEST_CASE("a VG on several PVs: highest seqno wins, mismatches are errors", "[vg][vm][scan]") {
  TempDir dir;
  VolumeManager vm = open_vm(dir);
  REQUIRE(vm.pvcreate(dir / "a.img", 64 * kMiB).ok());
  REQUIRE(vm.pvcreate(dir / "b.img", 64 * kMiB).ok());
  REQUIRE(vm.vgcreate("vg", {dir / "a.img", dir / "b.img"}).ok());
  REQUIRE(vm.lvcreate("vg", "lv", 20).ok());
  const VolumeGroup v = vm.read_vg("vg")->vg;
  CHECK(v.pvs.size() == 2);

  // An older copy on one PV (its newest commit undone): the newer wins.
  {
    VolumeGroup old = v;
    old.seqno = v.seqno - 1;
    old.lvs.clear();
    auto dev = open_pv_device(dir / "b.img", false).value();
    const PvOnDisk on = read_pv(*dev, dir / "b.img").value();
    REQUIRE(commit_metadata_text(*dev, on.mdas[0].header, vg_to_text(old, TextStyle::kDisk, {"x", "h", 1}),
                                 dir / "b.img")
                .ok());
    auto r = vm.read_vg("vg");
    REQUIRE(r.ok());
    CHECK(r->vg == v);
  }
  // Same seqno, different content: an error.
  {
    VolumeGroup bad = v;
    bad.lvs.clear();
    auto dev = open_pv_device(dir / "b.img", false).value();
    const PvOnDisk on = read_pv(*dev, dir / "b.img").value();
    REQUIRE(commit_metadata_text(*dev, on.mdas[0].header, vg_to_text(bad, TextStyle::kDisk, {"x", "h", 1}),
                                 dir / "b.img")
                .ok());
    auto r = vm.read_vg("vg");
    REQUIRE(!r.ok());
    CHECK(r.status().message().find("hold different metadata with the same seqno") != std::string::npos);
  }
  // A missing PV blocks edits.
  {
    REQUIRE(vm.remove_device(dir / "b.img", true).ok());
    auto r = vm.read_vg("vg");
    REQUIRE(r.ok());
    CHECK(r->missing_pvs == std::vector<std::string>{"pv1"});
    CHECK(vm.lvcreate("vg", "x", 1).status().errnum() == EIO);
  }
}

TEST_CASE("root: devices file and locks", "[vg][root]") {
  TempDir dir;
  auto root = Root::open(dir / "r");
  REQUIRE(root.ok());
  CHECK(root->devices()->empty());
  REQUIRE(root->add_device(dir / "a.img").ok());
  REQUIRE(root->add_device(dir / "b.img").ok());
  CHECK(root->add_device(dir / "a.img").errnum() == EEXIST);
  CHECK(*root->devices() == std::vector<std::string>{dir / "a.img", dir / "b.img"});
  REQUIRE(root->remove_device(dir / "a.img").ok());
  CHECK(root->remove_device(dir / "a.img").errnum() == ENOENT);
  CHECK(*root->devices() == std::vector<std::string>{dir / "b.img"});

  auto held = root->lock_vg("vg");
  REQUIRE(held.ok());
  // flock locks belong to open files, so a second open conflicts even in
  // one process: the same as a second command.
  auto second = root->lock_vg("vg", false);
  REQUIRE(!second.ok());
  CHECK(second.status().errnum() == EWOULDBLOCK);
  CHECK(root->lock_vg("other", false).ok());
  held->release();
  CHECK(root->lock_vg("vg", false).ok());
}

TEST_CASE("locks: concurrent commands on one VG lose no update", "[vg][vm][lock]") {
  TempDir dir;
  {
    VolumeManager vm = open_vm(dir);
    REQUIRE(vm.pvcreate(dir / "pv.img", 256 * kMiB).ok());
    REQUIRE(vm.vgcreate("vg", {dir / "pv.img"}).ok());
  }
  constexpr int kThreads = 4;
  constexpr int kPerThread = 5;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // One VolumeManager per thread, as separate commands would have.
      auto vm = VolumeManager::open(dir / "root");
      if (!vm.ok()) {
        ++failures;
        return;
      }
      for (int i = 0; i < kPerThread; ++i) {
        if (!vm->lvcreate("vg", "lv" + std::to_string(t) + "_" + std::to_string(i), 1).ok()) ++failures;
      }
    });
  }
  for (std::thread& th : threads) th.join();
  CHECK(failures == 0);
  VolumeManager vm = open_vm(dir);
  auto vg = vm.read_vg("vg");
  REQUIRE(vg.ok());
  CHECK(vg->vg.lvs.size() == kThreads * kPerThread);
  CHECK(vg->vg.seqno == 1 + kThreads * kPerThread);
  CHECK(validate_vg(vg->vg).ok());
}

}  // namespace
}  // namespace cowsnap::vg
