// Interoperability with real lvm2 (2.03.16 on Debian 12): PV files on loop
// devices, lvm2 run without device-mapper and restricted to that device.
// Needs root, lvm2 and loop devices: skipped with a warning when missing,
// failed under CI=true.
#include <unistd.h>

#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cowsnap/vg/allocation.h"
#include "cowsnap/vg/config_tree.h"
#include "cowsnap/vg/lvm_id.h"
#include "cowsnap/vg/volume_manager.h"
#include "vg_test_util.h"

namespace cowsnap::vg {
namespace {

using ::cowsnap::testing::LoopDevice;
using ::cowsnap::testing::run_command;
using ::cowsnap::testing::TempDir;

constexpr uint64_t kMiB = 1024 * 1024;

// Rows of an lvm2 JSON report, e.g. report_rows(out, "lv").
std::vector<std::map<std::string, std::string>> report_rows(const std::string& json_text,
                                                            const std::string& kind) {
  std::vector<std::map<std::string, std::string>> rows;
  auto j = nlohmann::json::parse(json_text);
  for (const auto& row : j.at("report").at(0).at(kind)) {
    std::map<std::string, std::string> r;
    for (const auto& [k, v] : row.items()) r[k] = v.get<std::string>();
    rows.push_back(std::move(r));
  }
  return rows;
}

std::map<std::string, std::string> row_named(const std::vector<std::map<std::string, std::string>>& rows,
                                             const std::string& key, const std::string& name) {
  for (const auto& r : rows) {
    if (r.at(key) == name) return r;
  }
  FAIL("no row with " << key << " = " << name);
  return {};
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// A VG name no other test on this machine uses at the same time.
std::string unique_vg(const std::string& base) { return base + std::to_string(::getpid()); }

VolumeManager open_vm(const TempDir& dir) {
  auto vm = VolumeManager::open(dir / "root");
  REQUIRE(vm.ok());
  return std::move(*vm);
}

TEST_CASE("lvm2 interop: cowsnap's PV layout is lvm2's, byte for byte", "[vg][lvm2]") {
  COWSNAP_REQUIRE_LVM2();
  TempDir dir;
  const std::string a = dir / "lvm2.img";
  const std::string b = dir / "cowsnap.img";
  REQUIRE(::truncate((std::ofstream(a), a.c_str()), 100 * kMiB) == 0);
  {
    LoopDevice loop = testing::attach_loop(a);
    REQUIRE(run_command(testing::lvm("pvcreate " + loop.dev(), loop.dev())).exit_code == 0);
  }
  // lvm2's PV read by cowsnap.
  auto dev_a = open_pv_device(a, true).value();
  auto pv_a = read_pv(*dev_a, a);
  REQUIRE(pv_a.ok());
  CHECK(pv_a->label_sector == 1);
  CHECK(pv_a->header.device_size_bytes == 100 * kMiB);
  CHECK(pv_a->header.data_areas == std::vector<DiskArea>{{kMiB, 0}});
  CHECK(pv_a->header.metadata_areas == std::vector<DiskArea>{{4096, kMiB - 4096}});
  CHECK(pv_a->header.extension_version == 2);
  CHECK(pv_a->header.extension_flags == 0);
  REQUIRE(pv_a->mdas.size() == 1);
  CHECK(pv_a->mdas[0].header.raw_locns.empty());
  CHECK(!pv_a->text());

  // cowsnap's pvcreate with the same uuid writes the same first MiB.
  auto dev_b = open_pv_device(b, false, 100 * kMiB).value();
  PvCreateOptions opts;
  opts.uuid = pv_a->header.uuid;
  REQUIRE(format_pv(*dev_b, b, opts).ok());
  const std::string bytes_a = read_file(a).substr(0, kMiB);
  const std::string bytes_b = read_file(b).substr(0, kMiB);
  CHECK(bytes_a.substr(0, 1024) == bytes_b.substr(0, 1024));      // label
  CHECK(bytes_a.substr(4096, 512) == bytes_b.substr(4096, 512));  // mda_header
  CHECK(bytes_a == bytes_b);

  // And lvm2 reads cowsnap's PV.
  LoopDevice loop = testing::attach_loop(b);
  auto r = run_command(testing::lvm(
      "pvs -o pv_name,pv_uuid,dev_size,pe_start --units b --nosuffix --reportformat json " + loop.dev(),
      loop.dev()));
  REQUIRE(r.exit_code == 0);
  auto rows = report_rows(r.output, "pv");
  REQUIRE(rows.size() == 1);
  CHECK(rows[0]["pv_uuid"] == format_lvm_id(pv_a->header.uuid));
  CHECK(rows[0]["pe_start"] == std::to_string(kMiB));
  CHECK(rows[0]["dev_size"] == std::to_string(100 * kMiB));
}

TEST_CASE("lvm2 interop: the seed VG made by cowsnap, as lvm2 sees it", "[vg][lvm2][seed]") {
  COWSNAP_REQUIRE_LVM2();
  TempDir dir;
  VolumeManager vm = open_vm(dir);
  const std::string vgname = unique_vg("vgsrv");
  const std::string pv = dir / "pv0.img";
  REQUIRE(vm.pvcreate(pv, 6625 * kMiB).ok());
  REQUIRE(vm.vgcreate(vgname, {pv}, 65536).ok());
  REQUIRE(vm.lvcreate(vgname, "b64m", 2).ok());
  REQUIRE(vm.lvcreate_snapshot(vgname, "b64m", "sb64m", 1).ok());
  REQUIRE(vm.lvcreate_snapshot(vgname, "b64m", "sb64m2", 2, 16).ok());
  REQUIRE(vm.lvcreate(vgname, "other", 3).ok());
  REQUIRE(vm.lvremove(vgname, "other").ok());  // a few commits, so the text moves on

  LoopDevice loop = testing::attach_loop(pv);
  const std::string& d = loop.dev();
  CHECK(run_command(testing::lvm("vgck " + vgname, d)).exit_code == 0);

  auto vgs =
      run_command(testing::lvm("vgs -o vg_name,pv_count,lv_count,snap_count,vg_extent_count,vg_free_count,"
                               "vg_extent_size,vg_seqno,vg_attr --units b --nosuffix --reportformat json " +
                                   vgname,
                               d));
  REQUIRE(vgs.exit_code == 0);
  auto vg_row = report_rows(vgs.output, "vg").at(0);
  CHECK(vg_row["pv_count"] == "1");
  CHECK(vg_row["lv_count"] == "3");  // origin + two snapshots, as lvm2 counts
  CHECK(vg_row["snap_count"] == "2");
  CHECK(vg_row["vg_extent_count"] == "207");
  CHECK(vg_row["vg_free_count"] == "202");
  CHECK(vg_row["vg_extent_size"] == std::to_string(32 * kMiB));
  CHECK(vg_row["vg_seqno"] == "6");
  CHECK(vg_row["vg_attr"] == "wz--n-");

  auto pvs = run_command(
      testing::lvm("pvs -o pv_name,vg_name,pv_pe_count,pv_pe_alloc_count --reportformat json", d));
  REQUIRE(pvs.exit_code == 0);
  auto pv_row = report_rows(pvs.output, "pv").at(0);
  CHECK(pv_row["vg_name"] == vgname);
  CHECK(pv_row["pv_pe_count"] == "207");
  CHECK(pv_row["pv_pe_alloc_count"] == "5");

  auto lvs =
      run_command(testing::lvm("lvs -a -o lv_name,lv_attr,lv_size,origin,chunk_size,devices,seg_pe_ranges "
                               "--units b --nosuffix --reportformat json " +
                                   vgname,
                               d));
  REQUIRE(lvs.exit_code == 0);
  auto rows = report_rows(lvs.output, "lv");
  CHECK(rows.size() == 3);  // lvm2 hides snapshotN even with -a
  auto origin = row_named(rows, "lv_name", "b64m");
  CHECK(origin["lv_attr"].substr(0, 4) == "owi-");
  CHECK(origin["lv_size"] == std::to_string(64 * kMiB));
  CHECK(origin["devices"] == d + "(0)");
  auto s1 = row_named(rows, "lv_name", "sb64m");
  CHECK(s1["lv_attr"].substr(0, 4) == "swi-");
  CHECK(s1["origin"] == "b64m");
  CHECK(s1["lv_size"] == std::to_string(32 * kMiB));
  CHECK(s1["chunk_size"] == "4096");
  CHECK(s1["seg_pe_ranges"] == d + ":2-2");
  auto s2 = row_named(rows, "lv_name", "sb64m2");
  CHECK(s2["origin"] == "b64m");
  CHECK(s2["lv_size"] == std::to_string(64 * kMiB));
  CHECK(s2["chunk_size"] == "8192");
  CHECK(s2["devices"] == d + "(3)");

  // lvm2's own backup of the VG says what cowsnap's model says.
  const std::string cfg = dir / "backup.cfg";
  REQUIRE(run_command(testing::lvm("vgcfgbackup -f " + cfg + " " + vgname, d)).exit_code == 0);
  auto backed = parse_vg_text(read_file(cfg));
  REQUIRE(backed.ok());
  VolumeGroup mine = vm.read_vg(vgname)->vg;
  backed->pvs[0].device = mine.pvs[0].device;  // a hint: lvm2 writes the loop device
  INFO("lvm2:\n"
       << vg_to_text(*backed, TextStyle::kFile, {}) << "\ncowsnap:\n"
       << vg_to_text(mine, TextStyle::kFile, {}));
  CHECK(*backed == mine);
}

TEST_CASE("lvm2 interop: a VG made by lvm2, read and changed by cowsnap, read again by lvm2", "[vg][lvm2]") {
  COWSNAP_REQUIRE_LVM2();
  TempDir dir;
  const std::string vgname = unique_vg("vgl");
  const std::string pv = dir / "lvm2pv.img";
  REQUIRE(::truncate((std::ofstream(pv), pv.c_str()), 256 * kMiB) == 0);
  std::string lvs_before;
  std::string backup;
  {
    LoopDevice loop = testing::attach_loop(pv);
    const std::string& d = loop.dev();
    REQUIRE(run_command(testing::lvm("pvcreate " + d, d)).exit_code == 0);
    REQUIRE(run_command(testing::lvm("vgcreate -s 4M " + vgname + " " + d, d)).exit_code == 0);
    REQUIRE(run_command(testing::lvm("lvcreate -an -Zn -L 8M -n alpha " + vgname, d)).exit_code == 0);
    REQUIRE(run_command(testing::lvm("lvcreate -an -Zn -L 12M -n beta " + vgname, d)).exit_code == 0);
    REQUIRE(run_command(testing::lvm("lvextend -L +8M " + vgname + "/alpha", d)).exit_code ==
            0);  // 2 segments
    REQUIRE(run_command(testing::lvm("lvchange --addtag keepme " + vgname + "/beta", d)).exit_code == 0);
    REQUIRE(run_command(testing::lvm("vgchange --addtag vgtag " + vgname, d)).exit_code == 0);
    auto r =
        run_command(testing::lvm("lvs -o lv_name,seg_start_pe,seg_size_pe,seg_pe_ranges --segments "
                                 "--reportformat json " +
                                     vgname,
                                 d));
    REQUIRE(r.exit_code == 0);
    lvs_before = r.output;
    REQUIRE(run_command(testing::lvm("vgcfgbackup -f " + (dir / "lvm2.cfg") + " " + vgname, d)).exit_code ==
            0);
    backup = read_file(dir / "lvm2.cfg");
  }

  SECTION("parser/writer round trip on lvm2's own vgcfgbackup output") {
    auto tree = parse_config(backup);
    REQUIRE(tree.ok());
    CHECK(tree->find_value("contents")->as_string() == "Text Format Volume Group");
    for (TextStyle style : {TextStyle::kDisk, TextStyle::kFile}) {
      auto again = parse_config(write_config(*tree, style));
      REQUIRE(again.ok());
      CHECK(*again == *tree);
    }
    auto vg = parse_vg_text(backup);
    REQUIRE(vg.ok());
    auto again = parse_vg_text(vg_to_text(*vg, TextStyle::kFile, {"x", "h", 1}));
    REQUIRE(again.ok());
    CHECK(*again == *vg);
    // Unknown keys (tags) are carried.
    CHECK(vg->extra.find_value("tags") != nullptr);
    CHECK(vg->find_lv("beta")->extra.find_value("tags")->items().at(0).as_string() == "keepme");
  }

  SECTION("cowsnap reads the segments and offsets lvm2 made, then changes the VG") {
    VolumeManager vm = open_vm(dir);
    REQUIRE(vm.add_device(pv).ok());
    auto read = vm.read_vg(vgname);
    REQUIRE(read.ok());
    const VolumeGroup& vg = read->vg;
    CHECK(vg.extent_size == 8192);
    const LogicalVolume* alpha = vg.find_lv("alpha");
    REQUIRE(alpha != nullptr);
    REQUIRE(alpha->segments.size() == 2);
    CHECK(alpha->segments[0].stripes[0] == Stripe{"pv0", 0});
    CHECK(alpha->segments[0].extent_count == 2);
    CHECK(alpha->segments[1].start_extent == 2);
    CHECK(alpha->segments[1].stripes[0] == Stripe{"pv0", 5});
    CHECK(alpha->segments[1].extent_count == 2);
    // The same ranges lvm2 reported.
    auto rows = report_rows(lvs_before, "seg");
    std::vector<std::string> lvm2_ranges;
    for (auto& r : rows) {
      if (r["lv_name"] == "alpha") lvm2_ranges.push_back(r["seg_pe_ranges"]);
    }
    REQUIRE(lvm2_ranges.size() == 2);
    auto map = vm.lv_map(vgname, "alpha");
    REQUIRE(map.ok());
    REQUIRE(map->size() == 2);
    CHECK((*map)[0] == LinearPiece{0, 8 * kMiB, pv, kMiB});
    CHECK((*map)[1] == LinearPiece{8 * kMiB, 8 * kMiB, pv, kMiB + 5 * 4 * kMiB});
    CHECK(lvm2_ranges[0].substr(lvm2_ranges[0].find(':')) == ":0-1");
    CHECK(lvm2_ranges[1].substr(lvm2_ranges[1].find(':')) == ":5-6");

    REQUIRE(vm.lvcreate(vgname, "gamma", 3).ok());
    REQUIRE(vm.lvcreate_snapshot(vgname, "alpha", "alphasnap", 2).ok());
    REQUIRE(vm.lvresize(vgname, "gamma", 5).ok());

    LoopDevice loop = testing::attach_loop(pv);
    const std::string& d = loop.dev();
    CHECK(run_command(testing::lvm("vgck " + vgname, d)).exit_code == 0);
    auto r = run_command(
        testing::lvm("lvs -a -o lv_name,lv_attr,lv_size,origin,chunk_size,lv_tags --units b --nosuffix "
                     "--reportformat json " +
                         vgname,
                     d));
    REQUIRE(r.exit_code == 0);
    auto after = report_rows(r.output, "lv");
    CHECK(row_named(after, "lv_name", "gamma")["lv_size"] == std::to_string(20 * kMiB));
    CHECK(row_named(after, "lv_name", "alphasnap")["origin"] == "alpha");
    CHECK(row_named(after, "lv_name", "alphasnap")["chunk_size"] == "4096");
    CHECK(row_named(after, "lv_name", "alpha")["lv_attr"].substr(0, 1) == "o");
    CHECK(row_named(after, "lv_name", "beta")["lv_tags"] == "keepme");
    auto vgs = run_command(testing::lvm("vgs -o vg_tags,vg_seqno --reportformat json " + vgname, d));
    CHECK(report_rows(vgs.output, "vg").at(0)["vg_tags"] == "vgtag");

    // lvm2 changes it again; cowsnap follows.
    REQUIRE(run_command(testing::lvm("lvcreate -an -Zn -L 4M -n delta " + vgname, d)).exit_code == 0);
    loop.detach();
    auto again = vm.read_vg(vgname);
    REQUIRE(again.ok());
    CHECK(again->vg.find_lv("delta") != nullptr);
    CHECK(again->vg.find_lv("alphasnap") != nullptr);
    CHECK(lv_role(again->vg, "alpha") == LvRole::kOrigin);
    CHECK(validate_vg(again->vg).ok());
  }
}

TEST_CASE("lvm2 interop: metadata that wrapped round the circular buffer, and vgremove", "[vg][lvm2]") {
  COWSNAP_REQUIRE_LVM2();
  TempDir dir;
  VolumeManager vm = open_vm(dir);
  const std::string vgname = unique_vg("vgw");
  const std::string pv = dir / "small-mda.img";
  PvCreateOptions opts;
  opts.pe_start_sectors = 32;  // a 12 KiB metadata area: a few commits wrap it
  REQUIRE(vm.pvcreate(pv, 64 * kMiB, opts).ok());
  REQUIRE(vm.vgcreate(vgname, {pv}).ok());
  uint64_t last_offset = 0;
  bool wrapped = false;
  for (int i = 0; i < 12 && !wrapped; ++i) {
    REQUIRE(vm.lvcreate(vgname, "lv" + std::to_string(i), 1).ok());
    auto dev = open_pv_device(pv, true).value();
    const uint64_t offset = read_pv(*dev, pv)->mdas.at(0).header.raw_locns.at(0).offset;
    wrapped = offset < last_offset;
    last_offset = offset;
  }
  REQUIRE(wrapped);
  {
    LoopDevice loop = testing::attach_loop(pv);
    CHECK(run_command(testing::lvm("vgck " + vgname, loop.dev())).exit_code == 0);
    auto r = run_command(testing::lvm("lvs -o lv_name --reportformat json " + vgname, loop.dev()));
    REQUIRE(r.exit_code == 0);
    CHECK(report_rows(r.output, "lv").size() == vm.read_vg(vgname)->vg.lvs.size());
  }
  REQUIRE(vm.vgremove(vgname, true).ok());
  LoopDevice loop = testing::attach_loop(pv);
  auto r = run_command(testing::lvm("pvs -o pv_name,vg_name --reportformat json", loop.dev()));
  REQUIRE(r.exit_code == 0);
  auto rows = report_rows(r.output, "pv");
  REQUIRE(rows.size() == 1);
  CHECK(rows[0]["vg_name"].empty());  // an orphan PV again
  // lvm2 can build a VG on it.
  CHECK(run_command(testing::lvm("vgcreate " + vgname + "x " + loop.dev(), loop.dev())).exit_code == 0);
}

}  // namespace
}  // namespace cowsnap::vg
