#include <catch2/catch.hpp>

#include <atomic>
#include <cerrno>
#include <thread>

#include "cowsnap/volume/active_vg.h"
#include "support/checks.h"
#include "support/patterns.h"
#include "support/system.h"

using namespace cowsnap;
using cowsnap::testing::byte_diff;
using cowsnap::testing::must;
using cowsnap::testing::pattern;
using cowsnap::testing::read_bytes;

namespace {

constexpr uint64_t kMiB = 1 << 20;

// A root with one PV file of `pv_bytes` holding the VG `vg_name`.
struct TestVg {
  cowsnap::testing::TempDir root;
  vg::VolumeManager vm;
  std::string pv;
  TestVg(const std::string& vg_name, uint64_t pv_bytes, uint64_t extent_sectors)
      : vm(must(vg::VolumeManager::open(root / "root"))), pv(root / "pv0.img") {
    must(vm.pvcreate(pv, pv_bytes));
    must(vm.vgcreate(vg_name, {pv}, extent_sectors));
  }
};

}  // namespace

TEST_CASE("activation builds lvm2's tables and snapshots live origins atomically") {
  TestVg t("vg-1", 64 * kMiB, 8192);  // 4 MiB extents
  auto& vm = t.vm;
  const std::string& pv = t.pv;
  must(vm.lvcreate("vg-1", "data", 4));

  auto active = must(ActiveVolumeGroup::activate(must(vm.read_vg("vg-1"))));
  auto data = active->find("data");
  REQUIRE(data);
  CHECK(data->device->size_bytes() == 16 * kMiB);
  CHECK(active->dm_table() == "vg--1-data: 0 32768 linear " + pv + " 2048\n");

  REQUIRE(data->device->write(0, pattern(0, 16 * kMiB, 1)).ok());
  auto commit = must(active->create_snapshot(vm, "data", "snap", 2, 8));
  auto snap = active->find("snap");
  REQUIRE(snap);
  REQUIRE(snap->is_snapshot());
  CHECK(snap->origin_lv == "data");
  CHECK(active->dm_table() ==
        "vg--1-data: 0 32768 snapshot-origin vg--1-data-real\n"
        "vg--1-data-real: 0 32768 linear " +
            pv +
            " 2048\n"
            "vg--1-snap: 0 32768 snapshot vg--1-data-real vg--1-snap-cow P 8\n"
            "vg--1-snap-cow: 0 16384 linear " +
            pv + " 34816\n");
  // Byte for byte what lvm2's dmsetup prints from the kernel: a target with
  // no status (linear, snapshot-origin) keeps the blank after its type.
  CHECK(active->dm_status() ==
        "vg--1-data: 0 32768 snapshot-origin \n"
        "vg--1-data-real: 0 32768 linear \n"
        "vg--1-snap: 0 32768 snapshot 16/16384 16\n"
        "vg--1-snap-cow: 0 16384 linear \n");

  REQUIRE(data->device->write(kMiB, pattern(kMiB, kMiB, 2)).ok());
  CHECK(byte_diff(read_bytes(*snap->device, 0, 16 * kMiB), pattern(0, 16 * kMiB, 1)) == "");

  // Everything survives a re-activation from disk.
  active.reset();
  auto again = must(ActiveVolumeGroup::activate(must(vm.read_vg("vg-1"))));
  auto snap2 = again->find("snap");
  REQUIRE(snap2);
  CHECK(snap2->snapshot->exception_count() == 256);
  CHECK(byte_diff(read_bytes(*snap2->device, 0, 16 * kMiB), pattern(0, 16 * kMiB, 1)) == "");
  auto expect = pattern(0, 16 * kMiB, 1);
  std::copy_n(pattern(kMiB, kMiB, 2).begin(), kMiB, expect.begin() + kMiB);
  CHECK(byte_diff(read_bytes(*again->find("data")->device, 0, 16 * kMiB), expect) == "");

  // Removing the snapshot detaches it and frees its extents.
  must(again->remove_volume(vm, "snap", false));
  CHECK(again->find("snap") == nullptr);
  CHECK(again->dm_table() == "vg--1-data: 0 32768 linear " + pv + " 2048\n");
}

TEST_CASE("online snapshot creation failing leaves no trace") {
  TestVg t("vg", 32 * kMiB, 8192);
  auto& vm = t.vm;
  must(vm.lvcreate("vg", "lv", 4));
  auto active = must(ActiveVolumeGroup::activate(must(vm.read_vg("vg"))));
  auto r = active->create_snapshot(vm, "lv", "s", 100, 8);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().errnum() == ENOSPC);
  CHECK(active->find("s") == nullptr);
  CHECK(must(vm.read_vg("vg")).vg.find_lv("s") == nullptr);
  auto bad = active->create_snapshot(vm, "nope", "s", 1, 8);
  CHECK(bad.status().errnum() == ENOENT);
}

TEST_CASE("a COW LV with a zeroed header activates as a new store, as in the kernel") {
  TestVg t("vg", 32 * kMiB, 8192);
  auto& vm = t.vm;
  must(vm.lvcreate("vg", "lv", 2));
  must(vm.lvcreate_snapshot("vg", "lv", "s", 1, 16));  // offline, as lvm2 would: header zeroed only
  auto active = must(ActiveVolumeGroup::activate(must(vm.read_vg("vg"))));
  auto s = active->find("s");
  REQUIRE(s);
  CHECK(s->snapshot->valid());
  CHECK(s->snapshot->status_params() == "32/8192 32");
  CHECK(s->snapshot->table_params() == "vg-lv-real vg-s-cow P 16");
}

TEST_CASE("lvextend of a live snapshot grows its store and rescues it from overflow") {
  TestVg t("vg", 64 * kMiB, 2048);  // 1 MiB extents
  auto& vm = t.vm;
  must(vm.lvcreate("vg", "lv", 8));
  auto active = must(ActiveVolumeGroup::activate(must(vm.read_vg("vg"))));
  auto lv = active->find("lv");
  REQUIRE(lv->device->write(0, pattern(0, 8 * kMiB, 1)).ok());
  must(active->create_snapshot(vm, "lv", "s", 1, 8));
  auto s = active->find("s");
  // 1 MiB store: 256 chunks hold 254 data chunks; write 200 of them.
  REQUIRE(lv->device->write(0, pattern(0, 200 * 4096, 2)).ok());
  CHECK(s->snapshot->status_params() == "1616/2048 16");

  must(active->grow_snapshot(vm, "s", 3));
  CHECK(s->snapshot->status_params() == "1616/6144 16");
  CHECK(active->dm_table().find("vg-s-cow: 0 6144 linear") != std::string::npos);
  // 400 more chunks: more than the old store held, fine for the new one.
  REQUIRE(lv->device->write(200 * 4096, pattern(200 * 4096, 400 * 4096, 2)).ok());
  CHECK(s->snapshot->valid());
  CHECK(byte_diff(read_bytes(*s->device, 0, 8 * kMiB), pattern(0, 8 * kMiB, 1)) == "");

  // And after re-activation from disk.
  active.reset();
  auto again = must(ActiveVolumeGroup::activate(must(vm.read_vg("vg"))));
  CHECK(again->find("s")->snapshot->exception_count() == 600);
  CHECK(byte_diff(read_bytes(*again->find("s")->device, 0, 8 * kMiB), pattern(0, 8 * kMiB, 1)) == "");
  CHECK(again->grow_snapshot(vm, "lv", 20).status().errnum() == EINVAL);
}

TEST_CASE("lvchange -an deactivates an origin with its snapshots until -ay") {
  TestVg t("vg", 32 * kMiB, 2048);
  auto& vm = t.vm;
  must(vm.lvcreate("vg", "lv", 4));
  must(vm.lvcreate("vg", "other", 1));
  auto active = must(ActiveVolumeGroup::activate(must(vm.read_vg("vg"))));
  REQUIRE(active->find("lv")->device->write(0, pattern(0, 4 * kMiB, 1)).ok());
  must(active->create_snapshot(vm, "lv", "s", 2, 8));
  REQUIRE(active->find("lv")->device->write(0, pattern(0, kMiB, 2)).ok());
  auto old_snapshot = active->find("s");

  REQUIRE(active->deactivate_volume("lv").ok());
  CHECK(active->find("lv") == nullptr);
  CHECK(active->find("s") == nullptr);
  CHECK(active->find("other") != nullptr);
  std::vector<uint8_t> buf(4096);
  CHECK(old_snapshot->device->read(0, buf).errnum() == ENODEV);
  REQUIRE(active->refresh(vm).ok());  // stays inactive
  CHECK(active->find("lv") == nullptr);
  CHECK(active->activate_volume(vm, "s").errnum() == EINVAL);  // origin inactive
  CHECK(active->deactivate_volume("lv").errnum() == ENOENT);

  REQUIRE(active->activate_volume(vm, "lv").ok());
  REQUIRE(active->find("lv"));
  REQUIRE(active->find("s"));
  CHECK(byte_diff(read_bytes(*active->find("s")->device, 0, 4 * kMiB), pattern(0, 4 * kMiB, 1)) == "");
  CHECK(byte_diff(read_bytes(*active->find("lv")->device, 0, kMiB), pattern(0, kMiB, 2)) == "");
}

TEST_CASE("lvrename of live volumes keeps snapshots in step with their origin") {
  TestVg t("vg", 64 * kMiB, 2048);  // 1 MiB extents
  auto& vm = t.vm;
  must(vm.lvcreate("vg", "lv", 8));
  must(vm.lvcreate("vg", "idle", 1));
  auto active = must(ActiveVolumeGroup::activate(must(vm.read_vg("vg"))));
  auto lv = active->find("lv");
  REQUIRE(lv->device->write(0, pattern(0, 8 * kMiB, 1)).ok());
  must(active->create_snapshot(vm, "lv", "s", 10, 8));

  SECTION("a snapshot, while its origin is being written") {
    // Every 4 KiB chunk of the origin is rewritten once, from a thread, while
    // the snapshot is detached and re-attached under its new name.
    std::atomic<bool> failed{false};
    std::thread writer([&] {
      for (uint64_t off = 0; off < 8 * kMiB; off += 4096) {
        if (!lv->device->write(off, pattern(off, 4096, 2)).ok()) failed = true;
      }
    });
    auto commit = active->rename_volume(vm, "s", "backup");
    writer.join();
    REQUIRE(commit.ok());
    CHECK_FALSE(failed);
    CHECK(active->find("s") == nullptr);
    auto renamed = active->find("backup");
    REQUIRE(renamed);
    CHECK(renamed->origin_lv == "lv");
    CHECK(renamed->snapshot->valid());
    CHECK(byte_diff(read_bytes(*renamed->device, 0, 8 * kMiB), pattern(0, 8 * kMiB, 1)) == "");
    CHECK(active->dm_table().find("vg-backup: 0 16384 snapshot vg-lv-real vg-backup-cow P 8\n") !=
          std::string::npos);
    CHECK(active->dm_table().find("vg-s") == std::string::npos);
    // On disk too: re-activation finds it under the new name, whole.
    active.reset();
    auto again = must(ActiveVolumeGroup::activate(must(vm.read_vg("vg"))));
    REQUIRE(again->find("backup"));
    CHECK(byte_diff(read_bytes(*again->find("backup")->device, 0, 8 * kMiB), pattern(0, 8 * kMiB, 1)) == "");
  }

  SECTION("an origin, with its snapshot") {
    REQUIRE(lv->device->write(0, pattern(0, kMiB, 2)).ok());
    must(active->rename_volume(vm, "lv", "base"));
    CHECK(active->find("lv") == nullptr);
    auto base = active->find("base");
    REQUIRE(base);
    REQUIRE(active->find("s"));
    CHECK(active->find("s")->origin_lv == "base");
    REQUIRE(base->device->write(kMiB, pattern(kMiB, kMiB, 3)).ok());
    CHECK(byte_diff(read_bytes(*active->find("s")->device, 0, 8 * kMiB), pattern(0, 8 * kMiB, 1)) == "");
    CHECK(byte_diff(read_bytes(*base->device, 0, kMiB), pattern(0, kMiB, 2)) == "");
    CHECK(active->dm_table().find("vg-s: 0 16384 snapshot vg-base-real vg-s-cow P 8\n") != std::string::npos);
  }

  SECTION("an inactive LV stays inactive; a taken name changes nothing") {
    REQUIRE(active->deactivate_volume("idle").ok());
    must(active->rename_volume(vm, "idle", "parked"));
    REQUIRE(active->refresh(vm).ok());
    CHECK(active->find("parked") == nullptr);
    REQUIRE(active->activate_volume(vm, "parked").ok());
    CHECK(active->find("parked") != nullptr);

    CHECK(active->rename_volume(vm, "s", "parked").status().errnum() == EEXIST);
    REQUIRE(active->find("s"));
    CHECK(active->find("s")->snapshot->valid());
    CHECK(active->rename_volume(vm, "nope", "other").status().errnum() == ENOENT);
  }
}

TEST_CASE("lvchange -an deactivates an origin whose snapshot overflowed") {
  TestVg t("vg", 32 * kMiB, 2048);  // 1 MiB extents
  auto& vm = t.vm;
  must(vm.lvcreate("vg", "lv", 4));
  auto active = must(ActiveVolumeGroup::activate(must(vm.read_vg("vg"))));
  must(active->create_snapshot(vm, "lv", "s", 1, 8));
  REQUIRE(active->find("lv")->device->write(0, pattern(0, 4 * kMiB, 1)).ok());  // overflows s
  REQUIRE_FALSE(active->find("s")->snapshot->valid());
  // Nothing of an invalid snapshot needs flushing: lvm2 deactivates it.
  REQUIRE(active->deactivate_volume("lv").ok());
  REQUIRE(active->activate_volume(vm, "lv").ok());
  CHECK_FALSE(active->find("s")->snapshot->valid());
}

TEST_CASE(
    "lvconvert --merge: the origin returns to the snapshot, deferred or at once, and the snapshot goes") {
  TestVg t("vg", 64 * kMiB, 2048);
  auto& vm = t.vm;
  must(vm.lvcreate("vg", "lv", 8));
  auto active = must(ActiveVolumeGroup::activate(
      must(vm.read_vg("vg")), ActiveVolumeGroup::Options{.write_back = {.enabled = true}}));
  REQUIRE(active->find("lv")->device->write(0, pattern(0, 8 * kMiB, 1)).ok());
  must(active->create_snapshot(vm, "lv", "s", 9, 8));
  must(active->create_snapshot(vm, "lv", "other", 9, 8));
  REQUIRE(active->find("lv")->device->write(kMiB, pattern(kMiB, 3 * kMiB, 2)).ok());
  REQUIRE(active->find("s")->device->write(6 * kMiB, pattern(6 * kMiB, 4096, 3)).ok());
  REQUIRE(active->find("lv")->device->flush().ok());
  const std::vector<uint8_t> snap_view = read_bytes(*active->find("s")->device, 0, 8 * kMiB);
  const std::vector<uint8_t> other_view = read_bytes(*active->find("other")->device, 0, 8 * kMiB);

  // Deferred: only the metadata changes; the snapshot serves on.
  must(active->merge_snapshot(vm, "s", false));
  auto ref = vg::snapshot_for(must(vm.read_vg("vg")).vg, "s");
  REQUIRE(ref);
  CHECK(ref->merging);
  CHECK(active->merging_origins().empty());
  CHECK(active->merge_snapshot(vm, "s", false).status().errnum() == EINVAL);  // merging already
  CHECK(active->merge_snapshot(vm, "other", false).status().errnum() == EBUSY);

  // The next activation starts it, in the synchronous mode.
  REQUIRE(active->deactivate_volume("lv").ok());
  REQUIRE(active->activate_volume(vm, "lv").ok());
  REQUIRE(active->merging_origins() == std::vector<std::string>{"lv"});
  CHECK_FALSE(active->find("lv")->origin->write_back_enabled());
  CHECK(active->dm_table().find("vg-lv: 0 16384 snapshot-merge vg-lv-real vg-s-cow P 8\n") !=
        std::string::npos);
  CHECK(active->dm_table().find("vg-s: ") == std::string::npos);
  CHECK(byte_diff(read_bytes(*active->find("lv")->device, 0, 8 * kMiB), snap_view) == "");
  CHECK(active->remove_volume(vm, "s", false).status().message() ==
        "Can't remove merging snapshot logical volume vg/s.");
  for (int steps = 0;; ++steps) {
    REQUIRE(steps < 100000);
    auto step = must(active->find("lv")->origin->merge_next(64 * 1024));
    if (step.done) break;
  }
  std::string merged;
  must(active->finish_merge(vm, "lv", merged));
  CHECK(merged == "s");
  CHECK(active->find("s") == nullptr);
  CHECK(must(vm.read_vg("vg")).vg.find_lv("s") == nullptr);
  CHECK(byte_diff(read_bytes(*active->find("lv")->device, 0, 8 * kMiB), snap_view) == "");
  CHECK(byte_diff(read_bytes(*active->find("other")->device, 0, 8 * kMiB), other_view) == "");
  auto again = must(ActiveVolumeGroup::activate(must(vm.read_vg("vg"))));
  CHECK(byte_diff(read_bytes(*again->find("lv")->device, 0, 8 * kMiB), snap_view) == "");
}
