// Bad metadata areas, second metadata areas, archives, vgcfgbackup /
// vgcfgrestore and vgck: the ways back from torn or corrupt metadata.
#include <fmt/format.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include "cowsnap/vg/metadata_backup.h"
#include "cowsnap/vg/pv_metadata.h"
#include "cowsnap/vg/volume_manager.h"
#include "support/system.h"

namespace cowsnap::vg {
namespace {

using ::cowsnap::testing::TempDir;

constexpr uint64_t kMiB = 1024 * 1024;

VolumeManager open_vm(const TempDir& dir, const std::string& command = "cowsnap lvcreate -n lv vg") {
  VolumeManagerOptions opts;
  opts.host_name = "testhost";
  opts.clock = [] { return int64_t{1795718806}; };
  opts.command_line = command;
  auto vm = VolumeManager::open(dir / "root", opts);
  REQUIRE(vm.ok());
  return std::move(*vm);
}

// Flips one byte of the current text of metadata area `mda` of `path`.
void corrupt_text(const std::string& path, size_t mda) {
  auto dev = open_pv_device(path, false).value();
  const PvOnDisk on = read_pv(*dev, path).value();
  REQUIRE(on.mdas.size() > mda);
  const RawLocn r = on.mdas[mda].header.raw_locns.at(0);
  std::array<uint8_t, 1> b{};
  REQUIRE(dev->read(on.mdas[mda].header.start + r.offset + 20, b).ok());
  b[0] ^= 0x20;
  REQUIRE(dev->write(on.mdas[mda].header.start + r.offset + 20, b).ok());
}

// Flips one byte of the header of metadata area `mda` (its checksum fails).
void corrupt_header(const std::string& path, size_t mda) {
  auto dev = open_pv_device(path, false).value();
  const PvOnDisk on = read_pv(*dev, path).value();
  std::array<uint8_t, 1> b{0x55};
  REQUIRE(dev->write(on.mdas[mda].header.start + 30, b).ok());
}

uint64_t text_offset(const std::string& path, size_t mda) {
  auto dev = open_pv_device(path, true).value();
  const PvOnDisk on = read_pv(*dev, path).value();
  return on.mdas[mda].header.start + on.mdas[mda].header.raw_locns.at(0).offset;
}

std::vector<std::string> warnings(VolumeManager& vm) {
  auto s = vm.scan();
  REQUIRE(s.ok());
  std::vector<std::string> out;
  for (const ScannedDevice& d : s->devices) out.insert(out.end(), d.warnings.begin(), d.warnings.end());
  return out;
}

bool has(const std::vector<std::string>& lines, const std::string& line) {
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST_CASE("second metadata area: lvm2's placement at the PV's end", "[vg][mda2]") {
  // Measured with lvm2 2.03.16 pvcreate --pvmetadatacopies 2 (first mda 4096+1044480).
  CHECK(second_mda_area(100 * kMiB, kMiB, 1044480).value() == DiskArea{103809024, 1048576});
  CHECK(second_mda_area(101 * kMiB + 300 * 1024, kMiB, 1044480).value() == DiskArea{104857600, 1355776});
  CHECK(second_mda_area(2 * kMiB, kMiB, 1044480).status().errnum() == EINVAL);

  TempDir dir;
  VolumeManager vm = open_vm(dir);
  const std::string pv = dir / "pv.img";
  PvCreateOptions two;
  two.metadata_copies = 2;
  auto h = vm.pvcreate(pv, 100 * kMiB, two);
  REQUIRE(h.ok());
  CHECK(h->metadata_areas == std::vector<DiskArea>{{4096, 1044480}, {103809024, 1048576}});
  auto vg = vm.vgcreate("vg", {pv});
  REQUIRE(vg.ok());
  CHECK(vg->vg.pvs[0].pe_count == 24);  // as lvm2: the second area ends the data area
  auto dev = open_pv_device(pv, true).value();
  const PvOnDisk on = read_pv(*dev, pv).value();
  REQUIRE(on.mdas.size() == 2);
  CHECK(on.mdas[0].text == on.mdas[1].text);
  PvCreateOptions three;
  three.metadata_copies = 3;
  CHECK(vm.pvcreate(dir / "x.img", 100 * kMiB, three).status().errnum() == EINVAL);
}

TEST_CASE("bad metadata text with one area: warnings name the PV and mda1, never silence",
          "[vg][mda][recovery]") {
  TempDir dir;
  VolumeManager vm = open_vm(dir);
  const std::string pv = dir / "pv.img";
  REQUIRE(vm.pvcreate(pv, 64 * kMiB).ok());
  REQUIRE(vm.vgcreate("vg", {pv}).ok());
  REQUIRE(vm.lvcreate("vg", "lv", 2).ok());
  const uint64_t at = text_offset(pv, 0);
  corrupt_text(pv, 0);
  auto s = vm.scan();
  REQUIRE(s.ok());
  CHECK(s->devices[0].status.ok());  // still a PV
  const auto w = s->devices[0].warnings;
  CHECK(has(w, fmt::format("WARNING: Checksum error on {} at offset {}.", pv, at)));
  CHECK(has(w, fmt::format("WARNING: bad metadata text on {} in mda1", pv)));
  CHECK(has(w, fmt::format("WARNING: repair VG metadata on {} with vgck --updatemetadata.", pv)));
  CHECK(has(w, fmt::format("WARNING: PV {} is marked in use but no VG was found using it.", pv)));
  CHECK(vm.read_vg("vg").status().errnum() == ENOENT);

  // The way back: the archive of the version before the last change, or
  // the backup of the last one.
  auto list = list_backups(vm.root().dir(), "vg");
  REQUIRE(list.ok());
  REQUIRE(list->size() == 2);  // vg_00000 (seqno 1, before lvcreate), backup/vg (seqno 2)
  CHECK((*list)[0].vg.seqno == 1);
  CHECK((*list)[0].description == "Created *before* executing 'cowsnap lvcreate -n lv vg'");
  CHECK((*list)[1].vg.seqno == 2);
  CHECK((*list)[1].path == dir / "root/backup/vg");
  auto restored = vm.vgcfgrestore("vg");
  REQUIRE(restored.ok());
  CHECK(restored->vg.seqno == 3);
  auto back = vm.read_vg("vg");
  REQUIRE(back.ok());
  CHECK(back->vg.find_lv("lv") != nullptr);
  CHECK(warnings(vm).empty());
}

TEST_CASE("two metadata areas: a bad one is warned about, the other is used, a commit repairs it",
          "[vg][mda2][recovery]") {
  TempDir dir;
  VolumeManager vm = open_vm(dir);
  const std::string pv = dir / "pv.img";
  PvCreateOptions two;
  two.metadata_copies = 2;
  REQUIRE(vm.pvcreate(pv, 100 * kMiB, two).ok());
  REQUIRE(vm.vgcreate("vg", {pv}).ok());
  REQUIRE(vm.lvcreate("vg", "lv", 2).ok());
  const VolumeGroup before = vm.read_vg("vg")->vg;

  for (size_t mda : {size_t{0}, size_t{1}}) {
    for (bool header : {false, true}) {
      DYNAMIC_SECTION("mda" << mda + 1 << (header ? " header" : " text")) {
        const uint64_t at = header ? 0 : text_offset(pv, mda);
        header ? corrupt_header(pv, mda) : corrupt_text(pv, mda);
        auto got = vm.read_vg("vg");
        REQUIRE(got.ok());
        CHECK(got->vg == before);
        const auto w = warnings(vm);
        if (header) {
          auto dev = open_pv_device(pv, true).value();
          const uint64_t start = read_pv(*dev, pv)->mdas[mda].header.start;
          CHECK(has(w, fmt::format("WARNING: bad metadata header on {} at {}.", pv, start)));
        } else {
          CHECK(has(w, fmt::format("WARNING: Checksum error on {} at offset {}.", pv, at)));
          CHECK(has(w, fmt::format("WARNING: bad metadata text on {} in mda{}", pv, mda + 1)));
        }
        CHECK(
            has(w, fmt::format("WARNING: scanning {} mda{} failed to read metadata summary.", pv, mda + 1)));

        SECTION("vgck reports, vgck --updatemetadata repairs with the same seqno") {
          auto check = vm.vgck("vg", false);
          REQUIRE(check.ok());
          CHECK(check->warnings == w);
          auto fixed = vm.vgck("vg", true);
          REQUIRE(fixed.ok());
          REQUIRE(fixed->repaired.size() == 1);
          auto dev = open_pv_device(pv, true).value();
          const uint64_t start = read_pv(*dev, pv)->mdas[mda].header.start;
          CHECK(fixed->repaired[0] ==
                fmt::format("WARNING: repairing bad metadata (0x{}) in mda{} at {} on {}.", header ? 4 : 8,
                            mda + 1, start, pv));
          CHECK(warnings(vm).empty());
          CHECK(vm.read_vg("vg")->vg == before);
        }
        SECTION("the next change writes both areas") {
          REQUIRE(vm.lvcreate("vg", "lv2", 1).ok());
          CHECK(warnings(vm).empty());
          auto dev = open_pv_device(pv, true).value();
          const PvOnDisk on = read_pv(*dev, pv).value();
          CHECK(on.mdas[0].text == on.mdas[1].text);
        }
      }
    }
  }
}

TEST_CASE("a PV whose label is gone is named in a warning, with the PVID it had", "[vg][recovery][label]") {
  TempDir dir;
  VolumeManager vm = open_vm(dir);
  const std::string pv = dir / "pv.img";
  const std::string plain = dir / "plain.img";
  auto h = vm.pvcreate(pv, 64 * kMiB);
  REQUIRE(h.ok());
  REQUIRE(vm.vgcreate("vg", {pv}).ok());
  { std::ofstream(plain).put('x'); }
  REQUIRE(::truncate(plain.c_str(), 8 * kMiB) == 0);
  REQUIRE(vm.add_device(plain).ok());
  auto dev = open_pv_device(pv, false).value();
  std::array<uint8_t, 512> zeros{};
  REQUIRE(dev->write(512, zeros).ok());  // LABELONE and the PV header
  const auto w = warnings(vm);
  CHECK(w == std::vector<std::string>{fmt::format("Device {} has no PVID (devices file {})", pv, h->uuid),
                                      fmt::format("Device {} has no PVID (devices file none)", plain)});
}

TEST_CASE("archives and backups follow every change, in lvm2's file layout", "[vg][backup]") {
  TempDir dir;
  VolumeManager vm = open_vm(dir);
  const std::string pv = dir / "pv.img";
  REQUIRE(vm.pvcreate(pv, 64 * kMiB).ok());
  REQUIRE(vm.vgcreate("vg", {pv}).ok());
  const std::string root = vm.root().dir();
  // vgcreate: nothing before it, so no archive; the backup holds seqno 1.
  CHECK((!std::filesystem::exists(root + "/archive") || std::filesystem::is_empty(root + "/archive")));
  REQUIRE(read_backup_file(root + "/backup/vg")->vg.seqno == 1);
  REQUIRE(vm.lvcreate("vg", "a", 1).ok());
  REQUIRE(vm.lvcreate("vg", "b", 1).ok());
  auto list = list_backups(root, "vg");
  REQUIRE(list.ok());
  REQUIRE(list->size() == 3);
  CHECK((*list)[0].path.find(root + "/archive/vg_00000-") == 0);
  CHECK((*list)[1].path.find(root + "/archive/vg_00001-") == 0);
  CHECK((*list)[0].vg.seqno == 1);
  CHECK((*list)[1].vg.seqno == 2);
  CHECK((*list)[2].vg.seqno == 3);
  CHECK((*list)[2].vg == vm.read_vg("vg")->vg);
  CHECK((*list)[2].description == "Created *after* executing 'cowsnap lvcreate -n lv vg'");
  CHECK((*list)[2].time == 1795718806);

  const std::string text = slurp(root + "/backup/vg");
  CHECK(text.rfind("# Generated by cowsnap: ", 0) == 0);
  CHECK(text.find("\n\ncontents = \"Text Format Volume Group\"\nversion = 1\n\n"
                  "description = \"Created *after* executing 'cowsnap lvcreate -n lv vg'\"\n\n"
                  "creation_host = \"testhost\"\t# Linux ") != std::string::npos);
  CHECK(text.find("\ncreation_time = 1795718806\t# ") != std::string::npos);
  CHECK(text.find("\n\nvg {\n\tid = \"") != std::string::npos);

  SECTION("vgcfgbackup -f, and vgcfgrestore of an older version") {
    REQUIRE(vm.vgcfgbackup("vg", dir / "saved.vg").ok());
    CHECK(read_backup_file(dir / "saved.vg")->vg == vm.read_vg("vg")->vg);
    CHECK(read_backup_file(dir / "saved.vg")->description == "cowsnap lvcreate -n lv vg");
    auto r = vm.vgcfgrestore("vg", (*list)[0].path);
    REQUIRE(r.ok());
    CHECK(r->vg.seqno == 4);  // above everything on disk, so it is in force
    CHECK(vm.read_vg("vg")->vg.lvs.empty());
    // The version it replaced went to the archive first.
    auto after = list_backups(root, "vg");
    REQUIRE(after->size() == 4);
    CHECK((*after)[2].vg.seqno == 3);
    CHECK(vm.vgcfgrestore("other", dir / "saved.vg").status().message() ==
          fmt::format("'{}' does not contain volume group 'other'.", dir / "saved.vg"));
  }
  SECTION("vgremove archives and drops the backup") {
    REQUIRE(vm.vgremove("vg", true).ok());
    CHECK(!std::filesystem::exists(root + "/backup/vg"));
    auto l = list_backups(root, "vg");
    REQUIRE(l->size() == 3);
    CHECK(l->back().vg.seqno == 3);
  }
  SECTION("a change is refused when its archive cannot be written") {
    std::filesystem::remove_all(root + "/archive");
    { std::ofstream(root + "/archive") << "not a directory"; }
    auto r = vm.lvcreate("vg", "c", 1);
    CHECK(!r.ok());
    CHECK(r.status().message().find("Cannot archive volume group metadata for vg") == 0);
    std::filesystem::remove(root + "/archive");
    CHECK(vm.read_vg("vg")->vg.seqno == 3);
  }
}

TEST_CASE("archives are kept as lvm2 keeps them: the newest 10, and all younger than 30 days",
          "[vg][backup][retention]") {
  TempDir dir;
  VolumeManager vm = open_vm(dir);
  const std::string pv = dir / "pv.img";
  REQUIRE(vm.pvcreate(pv, 64 * kMiB).ok());
  REQUIRE(vm.vgcreate("vg", {pv}).ok());
  for (int i = 0; i < 12; ++i) REQUIRE(vm.lvcreate("vg", "lv" + std::to_string(i), 1).ok());
  const std::string archive = vm.root().dir() + "/archive";
  const auto count = [&] {
    size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator(archive))
      n += e.path().extension() == ".vg" ? 1U : 0U;
    return n;
  };
  CHECK(count() == 12);  // all younger than 30 days
  for (const auto& e : std::filesystem::directory_iterator(archive)) {
    std::filesystem::last_write_time(
        e.path(), std::filesystem::file_time_type::clock::now() - std::chrono::hours(24 * 40));
  }
  REQUIRE(vm.lvcreate("vg", "more", 1).ok());
  CHECK(count() == 10);
  auto list = list_backups(vm.root().dir(), "vg");
  REQUIRE(list.ok());
  CHECK(list->front().vg.seqno == 4);  // the oldest kept: archives 3..12 of 0..12
  CHECK(list->front().path.find(archive + "/vg_00003-") == 0);
}

}  // namespace
}  // namespace cowsnap::vg
