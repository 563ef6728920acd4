// The fault matrix's "VG metadata commits" row: power cut at every write
// point of a metadata commit — one or two PVs, one or two metadata areas
// each — then the VG must read as exactly one committed version, the old
// or the new, never a mix and never gone.
//
// Two power models at each cut: the devices drop every write they had not
// flushed (FaultyDevice::power_cut), or everything written so far stays
// (the other extreme of a disk cache). Sector writes are atomic in both, as
// on real disks, which is what the one-sector mda_header relies on.
#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <limits>

#include "cowsnap/io/devices.h"
#include "cowsnap/vg/vg_commit.h"
#include "cowsnap/vg/volume_manager.h"
#include "support/system.h"

namespace cowsnap::vg {
namespace {

using ::cowsnap::testing::TempDir;

constexpr uint64_t kMiB = 1024 * 1024;

// Counts the mutating operations of one commit across all its devices; at
// operation `cut_at` the power goes for all of them at once.
struct Power {
  uint64_t ops = 0;
  uint64_t cut_at = std::numeric_limits<uint64_t>::max();
  bool keep_unflushed = false;
  bool off = false;
  std::vector<std::shared_ptr<FaultyDevice>> disks;

  Status step() {
    if (off) return Status::Error(EIO, "power is off");
    if (ops++ != cut_at) return Status::Ok();
    off = true;
    if (!keep_unflushed) {
      for (auto& d : disks) d->power_cut();
    }
    return Status::Error(EIO, "power cut");
  }
};

class Plug final : public DeviceWrapper {
 public:
  Plug(std::shared_ptr<BlockDevice> target, Power* power) : DeviceWrapper(std::move(target)), power_(power) {}
  Status write(uint64_t offset, std::span<const uint8_t> buf) override {
    COWSNAP_RETURN_IF_ERROR(power_->step());
    return DeviceWrapper::write(offset, buf);
  }
  Status flush() override {
    COWSNAP_RETURN_IF_ERROR(power_->step());
    return DeviceWrapper::flush();
  }
  Status write_zeroes(uint64_t offset, uint64_t length) override {
    COWSNAP_RETURN_IF_ERROR(power_->step());
    return DeviceWrapper::write_zeroes(offset, length);
  }

 private:
  Power* power_;
};

// Commits `text` to the VG's PVs through plugged devices; the status of the commit.
Status commit_through(Power& power, const VgOnDisk& current, const std::string& text) {
  auto pvs = open_pvs_for_commit(current.vg, current.pv_paths);
  REQUIRE(pvs.ok());
  for (PvCommit& w : *pvs) {
    auto file = FileDevice::open(w.path, FileDevice::Options{});
    REQUIRE(file.ok());
    auto disk = std::make_shared<FaultyDevice>(*file);
    power.disks.push_back(disk);
    w.dev = std::make_shared<Plug>(disk, &power);
    auto again = read_pv(*w.dev, w.path);
    REQUIRE(again.ok());
    w.pv = std::move(*again);
  }
  return commit_vg_text(*pvs, text);
}

TEST_CASE("power cut at every write of a VG metadata commit: old or new, never a mix", "[vg][crash][fault]") {
  const uint32_t copies = GENERATE(1U, 2U);
  const size_t pv_count = GENERATE(size_t{1}, size_t{2});
  const bool keep_unflushed = GENERATE(false, true);
  INFO("metadata copies " << copies << ", PVs " << pv_count << ", unflushed writes "
                          << (keep_unflushed ? "kept" : "dropped"));
  TempDir dir;
  auto vm = VolumeManager::open(dir / "root");
  REQUIRE(vm.ok());
  std::vector<std::string> paths;
  PvCreateOptions opts;
  opts.metadata_copies = copies;
  for (size_t i = 0; i < pv_count; ++i) {
    paths.push_back(dir / ("pv" + std::to_string(i) + ".img"));
    REQUIRE(vm->pvcreate(paths.back(), 64 * kMiB, opts).ok());
  }
  REQUIRE(vm->vgcreate("vg", paths).ok());
  REQUIRE(vm->lvcreate("vg", "lv", 2).ok());
  const VgOnDisk current = vm->read_vg("vg").value();
  const VolumeGroup& old_vg = current.vg;
  VolumeGroup new_vg = old_vg;
  new_vg.seqno += 1;
  new_vg.lvs[0].name = "renamed";
  const std::string text = vg_to_text(new_vg, TextStyle::kDisk, {"crash test", "h", 1});
  for (const std::string& p : paths) std::filesystem::copy_file(p, p + ".orig");
  const auto restore = [&] {
    for (const std::string& p : paths) {
      std::filesystem::copy_file(p + ".orig", p, std::filesystem::copy_options::overwrite_existing);
    }
  };

  Power dry;
  REQUIRE(commit_through(dry, current, text).ok());
  const uint64_t total = dry.ops;
  // Per area: text write, flush, header write, flush.
  CHECK(total == 4 * copies * pv_count);
  CHECK(vm->read_vg("vg")->vg == new_vg);

  bool seen_new = false;
  uint64_t old_count = 0;
  for (uint64_t cut = 0; cut < total; ++cut) {
    INFO("power cut at operation " << cut << " of " << total);
    restore();
    Power power;
    power.cut_at = cut;
    power.keep_unflushed = keep_unflushed;
    CHECK(!commit_through(power, current, text).ok());
    auto got = vm->read_vg("vg");
    REQUIRE(got.ok());  // never vanished
    const bool is_old = got->vg == old_vg;
    const bool is_new = got->vg == new_vg;
    CHECK((is_old || is_new));
    CHECK(got->missing_pvs.empty());
    // Once one header names the new text, the new version is in force.
    if (seen_new) CHECK(is_new);
    seen_new = seen_new || is_new;
    old_count += is_old ? 1 : 0;
    // And the VG stays usable: the next commit succeeds from there.
    auto next = vm->lvcreate("vg", "after", 1);
    REQUIRE(next.ok());
    CHECK(next->vg.seqno == got->vg.seqno + 1);
  }
  // Everything up to the first header write keeps the old version.
  CHECK(old_count >= 2 * copies * pv_count);
}

}  // namespace
}  // namespace cowsnap::vg
