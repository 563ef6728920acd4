// One damaged snapshot store fails that snapshot's activation only, as the
// kernel fails one dm-snapshot table load: the origin and the healthy
// snapshots are served (with copy-out), the damaged one fails every I/O
// with EIO naming the reason, and its store is never written.
#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstring>

#include "cowsnap/io/devices.h"
#include "cowsnap/volume/active_vg.h"
#include "support/checks.h"
#include "support/patterns.h"
#include "support/system.h"

using namespace cowsnap;
using cowsnap::testing::must;
using cowsnap::testing::pattern;
using cowsnap::testing::read_bytes;

namespace {

constexpr uint64_t kMiB = 1 << 20;

// The bytes of `lv`'s first extent piece on its PV file.
struct LvBytes {
  std::string path;
  uint64_t offset = 0;
};
LvBytes lv_start(vg::VolumeManager& vm, const std::string& vg_name, const std::string& lv) {
  auto pieces = must(vm.lv_map(vg_name, lv));
  REQUIRE_FALSE(pieces.empty());
  return {pieces.front().pv_path, pieces.front().pv_offset_bytes};
}

void poke_le32(const LvBytes& at, uint64_t field_offset, uint32_t value) {
  auto dev = must(FileDevice::open(at.path, FileDevice::Options{}));
  uint8_t raw[4] = {static_cast<uint8_t>(value), static_cast<uint8_t>(value >> 8),
                    static_cast<uint8_t>(value >> 16), static_cast<uint8_t>(value >> 24)};
  REQUIRE(dev->write(at.offset + field_offset, std::span<const uint8_t>(raw, 4)).ok());
  REQUIRE(dev->flush().ok());
}

std::vector<uint8_t> file_bytes(const LvBytes& at, size_t length) {
  auto dev = must(FileDevice::open(at.path, FileDevice::Options{.read_only = true}));
  return read_bytes(*dev, at.offset, length);
}

}  // namespace

TEST_CASE("a damaged snapshot store fails that snapshot only; the origin and other snapshots serve") {
  struct Damage {
    const char* what;
    uint64_t field;  // byte offset in the store header
    uint32_t value;
    const char* reason;
  };
  const Damage damage = GENERATE(Damage{"magic", 0, 0xdeadbeef, "bad magic 0xdeadbeef"},
                                 Damage{"version", 8, 7, "unsupported snapshot store version 7"},
                                 Damage{"chunk size", 12, 3, "invalid chunk size in the header: 3 sectors"});
  INFO("damaged " << damage.what);
  cowsnap::testing::TempDir dir;
  auto vm = must(vg::VolumeManager::open(dir / "root"));
  const std::string pv = dir / "pv0.img";
  must(vm.pvcreate(pv, 64 * kMiB));
  must(vm.vgcreate("vg", {pv}, 8192));
  must(vm.lvcreate("vg", "data", 2));  // 8 MiB
  const auto before = pattern(0, 8 * kMiB, 1);
  {
    auto active = must(ActiveVolumeGroup::activate(must(vm.read_vg("vg"))));
    REQUIRE(active->find("data")->device->write(0, before).ok());
    must(active->create_snapshot(vm, "data", "good", 3, 8));
    must(active->create_snapshot(vm, "data", "bad", 3, 8));
    REQUIRE(active->find("data")->device->flush().ok());
  }
  const LvBytes bad_cow = lv_start(vm, "vg", "bad");
  poke_le32(bad_cow, damage.field, damage.value);
  const auto bad_store_before = file_bytes(bad_cow, 12 * kMiB);

  for (uint32_t round = 0; round < 2; ++round) {
    INFO("activation " << round);
    auto active = must(ActiveVolumeGroup::activate(must(vm.read_vg("vg"))));
    auto data = active->find("data");
    auto good = active->find("good");
    auto bad = active->find("bad");
    REQUIRE(data);
    REQUIRE(good);
    REQUIRE(bad);
    CHECK(good->failure.ok());
    CHECK(bad->is_snapshot());
    CHECK(bad->origin_lv == "data");
    REQUIRE_FALSE(bad->failure.ok());
    CHECK_THAT(bad->failure.message(), Catch::Contains(damage.reason));
    // Only the healthy snapshot is attached to the origin.
    CHECK(data->origin->snapshots().size() == 1);

    std::vector<uint8_t> buf(4096);
    Status r = bad->device->read(0, buf);
    CHECK(r.errnum() == EIO);
    CHECK_THAT(r.message(), Catch::Contains("vg/bad") && Catch::Contains(damage.reason));
    CHECK(bad->device->write(0, buf).errnum() == EIO);
    CHECK(bad->device->flush().errnum() == EIO);
    CHECK_THAT(active->dm_table(), Catch::Contains("vg-bad: \n"));

    // The origin writes; the healthy snapshot copies out and keeps the old data.
    const auto after = pattern(0, 8 * kMiB, 2 + round);
    REQUIRE(data->device->write(0, after).ok());
    REQUIRE(data->device->flush().ok());
    CHECK(read_bytes(*good->device, 0, 8 * kMiB) == before);
    CHECK(read_bytes(*data->device, 0, 8 * kMiB) == after);
    CHECK(good->snapshot->valid());
  }
  // Like the kernel, nothing wrote the store it could not read.
  CHECK(file_bytes(bad_cow, 12 * kMiB) == bad_store_before);

  // It can be renamed (it fails again under its new name), not extended,
  // and removed; the origin keeps its healthy snapshot throughout.
  auto active = must(ActiveVolumeGroup::activate(must(vm.read_vg("vg"))));
  must(active->rename_volume(vm, "bad", "bad2"));
  REQUIRE(active->find("bad2"));
  CHECK(active->find("bad2")->failed());
  CHECK(active->find("bad") == nullptr);
  auto grown = active->grow_snapshot(vm, "bad2", 4);
  CHECK_THAT(grown.status().message(), Catch::Contains(damage.reason));
  must(active->remove_volume(vm, "bad2", false));
  CHECK(active->find("bad2") == nullptr);
  CHECK(must(vm.read_vg("vg")).vg.find_lv("bad2") == nullptr);
  CHECK(active->find("data")->origin->snapshots().size() == 1);
  CHECK(read_bytes(*active->find("good")->device, 0, 8 * kMiB) == before);
}
