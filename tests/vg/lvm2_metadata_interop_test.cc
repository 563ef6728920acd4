// Interop of the recovery features with real lvm2 2.03.16 on loop devices:
// two metadata areas laid out byte for byte as lvm2 lays them, lvm2
// reading cowsnap's two-area PVs, and backup files going both ways
// (cowsnap's restored by lvm2's vgcfgrestore -f, lvm2's by cowsnap's).
// lvm2 runs with LVM_SYSTEM_DIR in the test's directory, so its own
// archives and backups stay there. Needs root, lvm2 and loop devices:
// skipped with a warning when missing, failed under CI=true.
#include <unistd.h>

#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "cowsnap/vg/lvm_id.h"
#include "cowsnap/vg/metadata_backup.h"
#include "cowsnap/vg/volume_manager.h"
#include "vg_test_util.h"

namespace cowsnap::vg {
namespace {

using ::cowsnap::testing::LoopDevice;
using ::cowsnap::testing::run_command;
using ::cowsnap::testing::TempDir;

constexpr uint64_t kMiB = 1024 * 1024;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void make_file(const std::string& path, uint64_t bytes) {
  { std::ofstream create(path); }
  REQUIRE(::truncate(path.c_str(), static_cast<off_t>(bytes)) == 0);
}

// lvm2 limited to `dev`, its archive and backup directories under `dir`.
std::string lvm_in(const TempDir& dir, const std::string& args, const std::string& dev) {
  // lvm2 refuses an lvm.conf without a setting.
  { std::ofstream(dir / "lvm.conf") << "backup {\n\tbackup = 1\n\tarchive = 1\n}\n"; }
  return "LVM_SYSTEM_DIR=" + dir / "." + " " + testing::lvm(args, dev);
}

std::string unique_vg(const std::string& base) { return base + std::to_string(::getpid()); }

TEST_CASE("lvm2 interop: pvcreate --pvmetadatacopies 2 writes lvm2's bytes, and lvm2 reads both areas",
          "[vg][lvm2][mda2]") {
  COWSNAP_REQUIRE_LVM2();
  TempDir dir;
  const std::string a = dir / "lvm2.img";
  const std::string b = dir / "cowsnap.img";
  make_file(a, 100 * kMiB);
  {
    LoopDevice loop = testing::attach_loop(a);
    REQUIRE(run_command(lvm_in(dir, "pvcreate --pvmetadatacopies 2 " + loop.dev(), loop.dev())).exit_code ==
            0);
  }
  auto dev_a = open_pv_device(a, true).value();
  auto pv_a = read_pv(*dev_a, a).value();
  auto dev_b = open_pv_device(b, false, 100 * kMiB).value();
  PvCreateOptions opts;
  opts.uuid = pv_a.header.uuid;
  opts.metadata_copies = 2;
  REQUIRE(format_pv(*dev_b, b, opts).ok());
  CHECK(pv_a.header.metadata_areas == read_pv(*dev_b, b)->header.metadata_areas);
  CHECK(read_file(a) == read_file(b));  // the whole device, second area included

  // A VG on cowsnap's two-area PV, as lvm2 sees it.
  auto vm = VolumeManager::open(dir / "root");
  REQUIRE(vm.ok());
  const std::string pv = dir / "pv.img";
  const std::string vgname = unique_vg("vgm");
  PvCreateOptions two;
  two.metadata_copies = 2;
  REQUIRE(vm->pvcreate(pv, 100 * kMiB, two).ok());
  REQUIRE(vm->vgcreate(vgname, {pv}).ok());
  REQUIRE(vm->lvcreate(vgname, "lv", 2).ok());
  LoopDevice loop = testing::attach_loop(pv);
  auto r = run_command(
      lvm_in(dir, "pvs --noheadings -o pv_mda_count,pv_mda_used_count,vg_name " + loop.dev(), loop.dev()));
  REQUIRE(r.exit_code == 0);
  std::istringstream fields(r.output);
  std::string count, used, name;
  fields >> count >> used >> name;
  CHECK(count == "2");
  CHECK(used == "2");
  CHECK(name == vgname);
  CHECK(run_command(lvm_in(dir, "vgck " + vgname, loop.dev())).exit_code == 0);
  // lvm2 commits into both areas too, and cowsnap reads what it wrote.
  REQUIRE(run_command(lvm_in(dir, "lvcreate -an -Zn -L 4M -n bylvm " + vgname, loop.dev())).exit_code == 0);
  auto back = vm->read_vg(vgname);
  REQUIRE(back.ok());
  CHECK(back->vg.find_lv("bylvm") != nullptr);
  auto s = vm->scan();
  REQUIRE(s.ok());
  CHECK(s->devices.at(0).warnings.empty());
}

TEST_CASE("lvm2 interop: cowsnap's backup file restored by lvm2's vgcfgrestore, and lvm2's by cowsnap",
          "[vg][lvm2][backup]") {
  COWSNAP_REQUIRE_LVM2();
  TempDir dir;
  auto vm = VolumeManager::open(dir / "root");
  REQUIRE(vm.ok());
  const std::string pv = dir / "pv.img";
  const std::string vgname = unique_vg("vgb");
  REQUIRE(vm->pvcreate(pv, 128 * kMiB).ok());
  REQUIRE(vm->vgcreate(vgname, {pv}).ok());
  REQUIRE(vm->lvcreate(vgname, "origin", 4).ok());
  REQUIRE(vm->lvcreate_snapshot(vgname, "origin", "snap", 2).ok());
  const VolumeGroup with_snapshot = vm->read_vg(vgname)->vg;
  const std::string saved = dir / "saved.vg";
  REQUIRE(vm->vgcfgbackup(vgname, saved).ok());
  REQUIRE(vm->lvremove(vgname, "origin", true).ok());
  REQUIRE(vm->read_vg(vgname)->vg.lvs.empty());

  LoopDevice loop = testing::attach_loop(pv);
  const std::string& d = loop.dev();
  // cowsnap's file, lvm2's restore (a VG with a snapshot, no LV active).
  auto r = run_command(lvm_in(dir, "vgcfgrestore -f " + saved + " " + vgname, d));
  CHECK(r.exit_code == 0);
  auto restored = vm->read_vg(vgname);
  REQUIRE(restored.ok());
  CHECK(restored->vg.seqno == with_snapshot.seqno + 1);
  VolumeGroup expect = with_snapshot;
  expect.seqno = restored->vg.seqno;
  expect.pvs[0].device = restored->vg.pvs[0].device;  // lvm2 writes the loop device as the hint
  CHECK(restored->vg == expect);
  CHECK(run_command(lvm_in(dir, "vgck " + vgname, d)).exit_code == 0);

  // lvm2's file (lvm2 writes it, then changes the VG), cowsnap's restore.
  const std::string theirs = dir / "lvm2.vg";
  REQUIRE(run_command(lvm_in(dir, "vgcfgbackup -f " + theirs + " " + vgname, d)).exit_code == 0);
  REQUIRE(run_command(lvm_in(dir, "lvcreate -an -Zn -L 8M -n extra " + vgname, d)).exit_code == 0);
  REQUIRE(vm->read_vg(vgname)->vg.find_lv("extra") != nullptr);
  auto file = read_backup_file(theirs);
  REQUIRE(file.ok());
  auto mine = vm->vgcfgrestore(vgname, theirs);
  REQUIRE(mine.ok());
  CHECK(vm->read_vg(vgname)->vg.find_lv("extra") == nullptr);
  CHECK(vm->read_vg(vgname)->vg.find_lv("snap") != nullptr);
  auto lvs = run_command(lvm_in(dir, "lvs --noheadings -o lv_name " + vgname, d));
  REQUIRE(lvs.exit_code == 0);
  CHECK(lvs.output.find("extra") == std::string::npos);
  CHECK(lvs.output.find("snap") != std::string::npos);
  // lvm2 lists cowsnap's archives in its own format when pointed at one.
  auto list = list_backups(vm->root().dir(), vgname);
  REQUIRE(list.ok());
  REQUIRE(!list->empty());
  auto shown = run_command(lvm_in(dir, "vgcfgrestore --list -f " + list->front().path, d));
  CHECK(shown.exit_code == 0);
  CHECK(shown.output.find("Created *before* executing") != std::string::npos);
}

}  // namespace
}  // namespace cowsnap::vg
