#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cowsnap/server/volume_service.h"
#include "cowsnap/vg/allocation.h"
#include "support/checks.h"
#include "support/patterns.h"
#include "support/system.h"

using namespace cowsnap;
using Catch::Matchers::Contains;
using Catch::Matchers::EndsWith;
using Catch::Matchers::StartsWith;
using cowsnap::server::Export;
using cowsnap::server::ExportListing;
using cowsnap::server::VolumeService;
using cowsnap::testing::byte_diff;
using cowsnap::testing::must;
using cowsnap::testing::pattern;
using nlohmann::json;

namespace {

constexpr uint64_t kMiB = 1 << 20;

// A root holding VG "vg0" on one 64 MiB PV file (4 MiB extents) with the
// linear LVs "data" (16 MiB) and "other" (8 MiB), made offline before the
// service starts, as `cowsnap lvcreate` then `cowsnap serve` would.
struct TestRoot {
  cowsnap::testing::TempDir tmp;
  std::string root = tmp / "root";
  std::string pv = tmp / "pv0.img";

  TestRoot() {
    vg::VolumeManager vm = must(vg::VolumeManager::open(root));
    REQUIRE(vm.pvcreate(pv, 64 * kMiB).ok());
    must(vm.vgcreate("vg0", {pv}, 8192));
    must(vm.lvcreate("vg0", "data", 4));
    must(vm.lvcreate("vg0", "other", 2));
  }

  std::unique_ptr<VolumeService> start(VolumeService::Options options = {}) {
    return must(VolumeService::start(root, std::move(options)));
  }
};

std::vector<std::string> export_names(const VolumeService& service) {
  std::vector<std::string> names;
  for (const ExportListing& e : service.list_exports()) names.push_back(e.name);
  return names;
}

std::string description_of(const VolumeService& service, const std::string& name) {
  for (const ExportListing& e : service.list_exports()) {
    if (e.name == name) return e.description;
  }
  FAIL("no export " << name);
  return {};
}

Status write_at(Export& exp, uint64_t offset, const std::vector<uint8_t>& data) {
  return exp.io([&](Target& dev) { return dev.write(offset, data); });
}

std::vector<uint8_t> read_at(Export& exp, uint64_t offset, size_t length) {
  std::vector<uint8_t> out(length);
  const Status s = exp.io([&](Target& dev) { return dev.read(offset, out); });
  INFO(s.message());
  REQUIRE(s.ok());
  return out;
}

// Runs a control request and fails the test unless it succeeded.
control::Response ok(VolumeService& service, const json& request) {
  control::Response r = service.handle(request);
  INFO(request.dump() << " -> " << r.message);
  REQUIRE(r.ok);
  return r;
}

// Runs a control request that must fail with `errnum`; its message.
std::string refused(VolumeService& service, const json& request, int errnum) {
  control::Response r = service.handle(request);
  INFO(request.dump() << " -> " << r.message);
  REQUIRE_FALSE(r.ok);
  CHECK(r.errnum == errnum);
  return r.message;
}

// The "lvs" entry of `lv` in vg0, or null when there is none.
json lvs_entry(VolumeService& service, const std::string& lv) {
  const control::Response r = ok(service, {{"op", "lvs"}});
  for (const json& item : r.body.at("lvs")) {
    if (item.at("vg") == "vg0" && item.at("lv") == lv) return item;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("VolumeService serves every LV of the root as VG/LV, the first by name by default") {
  TestRoot t;
  std::vector<std::string> errors;
  VolumeService::Options options;
  options.log_error = [&errors](const std::string& m) { errors.push_back(m); };
  auto service = t.start(options);
  CHECK(service->root_dir() == t.root);
  CHECK(export_names(*service) == std::vector<std::string>{"vg0/data", "vg0/other"});
  CHECK(service->default_export() == "vg0/data");
  CHECK(description_of(*service, "vg0/data") == "16.00 MiB, linear");
  CHECK(description_of(*service, "vg0/other") == "8.00 MiB, linear");
  CHECK(errors.empty());

  auto exp = must(service->connect(""));
  CHECK(exp->name() == "vg0/data");
  CHECK(exp->device().size_bytes() == 16 * kMiB);
  CHECK(service->describe(*exp) == "16.00 MiB, linear");
  service->disconnect(exp);
}

TEST_CASE("VolumeService on a root without LVs has no default export and says why a name fails") {
  cowsnap::testing::TempDir tmp;
  {
    vg::VolumeManager vm = must(vg::VolumeManager::open(tmp / "root"));
    REQUIRE(vm.pvcreate(tmp / "pv0.img", 16 * kMiB).ok());
    must(vm.vgcreate("vg0", {tmp / "pv0.img"}, 8192));
  }
  auto service = must(VolumeService::start(tmp / "root", {}));
  CHECK(service->list_exports().empty());
  CHECK(service->default_export().empty());
  auto none = service->connect("");
  REQUIRE_FALSE(none.ok());
  CHECK(none.status().errnum() == ENOENT);
  CHECK_THAT(none.status().message(), Contains("no logical volume is active under " + tmp / "root"));
}

TEST_CASE("VolumeService::start fails on a root it cannot open") {
  cowsnap::testing::TempDir tmp;
  // A file where the root directory should be.
  REQUIRE(cowsnap::testing::run_command("touch " + cowsnap::testing::shell_quote(tmp / "root")).exit_code ==
          0);
  auto started = VolumeService::start(tmp / "root", {});
  CHECK_FALSE(started.ok());
}

TEST_CASE("VolumeService connections: counted per export, I/O reaches the LV and survives a restart") {
  TestRoot t;
  {
    auto service = t.start();
    auto unknown = service->connect("vg0/nope");
    REQUIRE_FALSE(unknown.ok());
    CHECK(unknown.status().errnum() == ENOENT);
    CHECK_THAT(unknown.status().message(), Contains("exports are named VG/LV, e.g. \"vg0/data\""));

    auto a = must(service->connect("vg0/data"));
    auto b = must(service->connect("vg0/data"));
    CHECK(a == b);  // one Export per LV, shared by its connections
    CHECK(a->connections() == 2);
    CHECK(lvs_entry(*service, "data").at("open") == 2);
    CHECK(lvs_entry(*service, "other").at("open") == 0);

    REQUIRE(write_at(*a, 0, pattern(0, 2 * kMiB, 1)).ok());
    CHECK(byte_diff(read_at(*b, 0, 2 * kMiB), pattern(0, 2 * kMiB, 1)) == "");
    // The LVs do not overlap: "other" still reads zeroes.
    auto other = must(service->connect("vg0/other"));
    CHECK(byte_diff(read_at(*other, 0, kMiB), std::vector<uint8_t>(kMiB, 0)) == "");

    service->disconnect(a);
    service->disconnect(b);
    service->disconnect(other);
    CHECK(a->connections() == 0);
    CHECK(lvs_entry(*service, "data").at("open") == 0);
    REQUIRE(service->flush_all().ok());
  }
  // The service let go of its PV locks, and the data is on the PV.
  auto again = t.start();
  auto exp = must(again->connect("vg0/data"));
  CHECK(byte_diff(read_at(*exp, 0, 2 * kMiB), pattern(0, 2 * kMiB, 1)) == "");
  again->disconnect(exp);
}

TEST_CASE("VolumeService online snapshot: created under a connected origin, served, removed") {
  TestRoot t;
  auto service = t.start();
  auto data = must(service->connect("vg0/data"));
  REQUIRE(write_at(*data, 0, pattern(0, 4 * kMiB, 1)).ok());

  const control::Response created =
      ok(*service,
         {{"op", "lvcreate_snapshot"}, {"vg", "vg0"}, {"origin", "data"}, {"lv", "snap"}, {"extents", 2u}});
  CHECK(created.body.at("seqno").get<uint64_t>() > 0);
  CHECK(export_names(*service) == std::vector<std::string>{"vg0/data", "vg0/other", "vg0/snap"});
  CHECK(description_of(*service, "vg0/data") == "16.00 MiB, origin of 1 snapshot");
  const std::string snap_description = description_of(*service, "vg0/snap");
  CHECK_THAT(snap_description, StartsWith("16.00 MiB, snapshot of vg0/data, Data% "));
  CHECK_THAT(snap_description, EndsWith(" (COW 8.00 MiB, chunk 4.00 KiB)"));
  // The connection made before the snapshot keeps working, as the origin.
  CHECK(data->connections() == 1);
  REQUIRE(write_at(*data, kMiB, pattern(kMiB, kMiB, 2)).ok());

  auto snap = must(service->connect("vg0/snap"));
  CHECK(byte_diff(read_at(*snap, 0, 4 * kMiB), pattern(0, 4 * kMiB, 1)) == "");
  const json state = lvs_entry(*service, "snap");
  CHECK(state.at("snapshot") == true);
  CHECK(state.at("origin") == "data");
  CHECK(state.at("valid") == true);
  CHECK(state.at("chunk_sectors") == 8);
  CHECK(state.at("data_percent").get<double>() > 0.0);  // the copied-out chunks

  // A second snapshot, sized in bytes: rounded up to whole extents.
  const control::Response second = ok(*service, {{"op", "lvcreate_snapshot"},
                                                 {"vg", "vg0"},
                                                 {"origin", "data"},
                                                 {"lv", "snap2"},
                                                 {"size_bytes", 5 * kMiB}});
  CHECK(second.notices == std::vector<std::string>{"Rounding up size to full physical extent 8.00 MiB"});
  CHECK(description_of(*service, "vg0/data") == "16.00 MiB, origin of 2 snapshots");

  // Busy snapshot: refused unless forced.
  const std::string busy = refused(*service, {{"op", "lvremove"}, {"vg", "vg0"}, {"lv", "snap"}}, EBUSY);
  CHECK_THAT(busy, Contains("NBD clients connected to vg0/snap (1 connection)"));
  service->disconnect(snap);
  ok(*service, {{"op", "lvremove"}, {"vg", "vg0"}, {"lv", "snap"}});
  CHECK(export_names(*service) == std::vector<std::string>{"vg0/data", "vg0/other", "vg0/snap2"});
  CHECK(description_of(*service, "vg0/data") == "16.00 MiB, origin of 1 snapshot");
  // The origin's connection carried on through both changes.
  CHECK(byte_diff(read_at(*data, kMiB, kMiB), pattern(kMiB, kMiB, 2)) == "");
  service->disconnect(data);
}

TEST_CASE("VolumeService lvremove --force retires a connected export: its requests fail with ENODEV") {
  TestRoot t;
  auto service = t.start();
  ok(*service,
     {{"op", "lvcreate_snapshot"}, {"vg", "vg0"}, {"origin", "data"}, {"lv", "snap"}, {"extents", 2u}});
  auto snap = must(service->connect("vg0/snap"));

  // Removing the origin takes its snapshots along, so a client of one of
  // them makes the origin busy too.
  const std::string busy = refused(*service, {{"op", "lvremove"}, {"vg", "vg0"}, {"lv", "data"}}, EBUSY);
  CHECK_THAT(busy, Contains("Logical volume vg0/data in use"));
  CHECK_THAT(busy, Contains("vg0/snap (1 connection)"));

  const control::Response forced =
      ok(*service, {{"op", "lvremove"}, {"vg", "vg0"}, {"lv", "data"}, {"force", true}});
  REQUIRE_FALSE(forced.notices.empty());
  CHECK(forced.notices[0] == "Removing vg0/data with NBD clients connected to vg0/snap (1 connection)");
  CHECK(export_names(*service) == std::vector<std::string>{"vg0/other"});

  std::vector<uint8_t> buf(4096);
  const Status after = snap->io([&](Target& dev) { return dev.read(0, buf); });
  CHECK(after.errnum() == ENODEV);
  CHECK_THAT(after.message(), Contains("vg0/snap was removed while connected"));
  service->disconnect(snap);
  // flush_all skips the retired export instead of failing on it.
  CHECK(service->flush_all().ok());
}

TEST_CASE("VolumeService refuses changes under connected clients") {
  TestRoot t;
  auto service = t.start();
  auto data = must(service->connect("vg0/data"));

  CHECK_THAT(refused(*service, {{"op", "lvchange"}, {"vg", "vg0"}, {"lv", "data"}, {"active", false}}, EBUSY),
             Contains("NBD clients connected to vg0/data (1 connection)"));
  CHECK_THAT(refused(*service, {{"op", "lvrename"}, {"vg", "vg0"}, {"lv", "data"}, {"new_lv", "d2"}}, EBUSY),
             Contains("Cannot rename vg0/data while NBD clients are connected"));
  // Growing a linear LV re-activates its VG: refused while any LV of the
  // VG has a client, even another one.
  CHECK_THAT(
      refused(*service, {{"op", "lvextend"}, {"vg", "vg0"}, {"lv", "other"}, {"extents", 3u}}, ENOTSUP),
      Contains("while 1 NBD connection is open on volume group vg0"));
  CHECK(export_names(*service) == std::vector<std::string>{"vg0/data", "vg0/other"});

  service->disconnect(data);
  ok(*service, {{"op", "lvextend"}, {"vg", "vg0"}, {"lv", "other"}, {"extents", 3u}});
  CHECK(description_of(*service, "vg0/other") == "12.00 MiB, linear");
  ok(*service, {{"op", "lvrename"}, {"vg", "vg0"}, {"lv", "data"}, {"new_lv", "d2"}});
  CHECK(export_names(*service) == std::vector<std::string>{"vg0/d2", "vg0/other"});
  ok(*service, {{"op", "lvchange"}, {"vg", "vg0"}, {"lv", "d2"}, {"active", false}});
  CHECK(export_names(*service) == std::vector<std::string>{"vg0/other"});
  ok(*service, {{"op", "lvchange"}, {"vg", "vg0"}, {"lv", "d2"}, {"active", true}});
  CHECK(export_names(*service) == std::vector<std::string>{"vg0/d2", "vg0/other"});
}

TEST_CASE("VolumeService::handle answers bad requests with an error, never a throw") {
  TestRoot t;
  auto service = t.start();
  CHECK(refused(*service, json::object(), EINVAL) == "request has no \"op\"");
  CHECK(refused(*service, {{"op", "frobnicate"}}, EINVAL) == "unknown op \"frobnicate\"");
  CHECK_THAT(refused(*service, {{"op", "lvcreate"}, {"lv", "x"}, {"extents", 1u}}, EINVAL),
             Contains("\"vg\""));
  CHECK_THAT(refused(*service, {{"op", "lvcreate"}, {"vg", "vg0"}, {"lv", "x"}, {"extents", 0u}}, EINVAL),
             Contains("larger than 0"));
  CHECK_THAT(refused(*service, {{"op", "lvcreate"}, {"vg", "nope"}, {"lv", "x"}, {"extents", 1u}}, ENOENT),
             Contains("Volume group \"nope\" not found"));
  CHECK_THAT(refused(*service, {{"op", "lvremove"}, {"vg", "vg0"}, {"lv", "nope"}}, ENOENT),
             Contains("Failed to find logical volume \"vg0/nope\""));
  // A field of the wrong JSON type.
  CHECK_THAT(refused(*service, {{"op", 7}}, EINVAL), StartsWith("bad request: "));
  // None of it changed anything.
  CHECK(export_names(*service) == std::vector<std::string>{"vg0/data", "vg0/other"});
}

TEST_CASE("VolumeService lvcreate, refresh and dmsetup through the control operations") {
  TestRoot t;
  auto service = t.start();
  const control::Response created =
      ok(*service, {{"op", "lvcreate"}, {"vg", "vg0"}, {"lv", "new"}, {"size_bytes", 5 * kMiB}});
  CHECK(created.notices == std::vector<std::string>{"Rounding up size to full physical extent 8.00 MiB"});
  CHECK(description_of(*service, "vg0/new") == "8.00 MiB, linear");

  const std::string table = ok(*service, {{"op", "dmsetup_table"}}).body.at("text");
  CHECK_THAT(table, Contains("vg0-data: 0 32768 linear " + t.pv + " 2048\n"));
  CHECK_THAT(table, Contains("vg0-new: 0 16384 linear " + t.pv));
  CHECK_THAT(ok(*service, {{"op", "dmsetup_status"}, {"vg", "vg0"}}).body.at("text").get<std::string>(),
             Contains("vg0-data: 0 32768 linear"));
  CHECK_THAT(refused(*service, {{"op", "dmsetup_table"}, {"vg", "nope"}}, ENOENT), Contains("\"nope\""));

  // refresh picks up a VG made offline while the server runs.
  {
    vg::VolumeManager vm = must(vg::VolumeManager::open(t.root));
    REQUIRE(vm.pvcreate(t.tmp / "pv1.img", 16 * kMiB).ok());
    must(vm.vgcreate("vg1", {t.tmp / "pv1.img"}, 8192));
    must(vm.lvcreate("vg1", "late", 1));
  }
  CHECK(export_names(*service) == std::vector<std::string>{"vg0/data", "vg0/new", "vg0/other"});
  ok(*service, {{"op", "refresh"}});
  CHECK(export_names(*service) == std::vector<std::string>{"vg0/data", "vg0/new", "vg0/other", "vg1/late"});
}

TEST_CASE("VolumeService does not serve a VG whose PV another root's server holds") {
  TestRoot t;
  auto first = t.start();
  // A second root whose devices file lists the same PV file.
  cowsnap::testing::TempDir other;
  {
    vg::VolumeManager vm = must(vg::VolumeManager::open(other / "root"));
    REQUIRE(vm.add_device(t.pv).ok());
  }
  std::vector<std::string> errors;
  VolumeService::Options options;
  options.log_error = [&errors](const std::string& m) { errors.push_back(m); };
  auto second = must(VolumeService::start(other / "root", options));
  CHECK(second->list_exports().empty());
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith("volume group vg0 not served: "));
  CHECK_THAT(refused(*second, {{"op", "lvcreate"}, {"vg", "vg0"}, {"lv", "x"}, {"extents", 1u}}, EBUSY),
             Contains("Volume group \"vg0\" is not served by this server"));
  // The first server is untouched.
  CHECK(export_names(*first) == std::vector<std::string>{"vg0/data", "vg0/other"});
}

TEST_CASE("VolumeService prints sizes as lvm2's long form does: '<' marks a value rounded up") {
  cowsnap::testing::TempDir tmp;
  {
    vg::VolumeManager vm = must(vg::VolumeManager::open(tmp / "root"));
    REQUIRE(vm.pvcreate(tmp / "pv0.img", 32 * kMiB).ok());
    must(vm.vgcreate("vg0", {tmp / "pv0.img"}, 16));  // 8 KiB extents
    must(vm.lvcreate("vg0", "odd", 1003));            // 8024 KiB = 7.8359375 MiB
    must(vm.lvcreate("vg0", "even", 1024));
  }
  auto service = must(VolumeService::start(tmp / "root", {}));
  CHECK(description_of(*service, "vg0/odd") == "<7.84 MiB, linear");
  CHECK(description_of(*service, "vg0/even") == "8.00 MiB, linear");
  const control::Response created =
      ok(*service, {{"op", "lvcreate"}, {"vg", "vg0"}, {"lv", "tiny"}, {"size_bytes", uint64_t{1}}});
  CHECK(created.notices == std::vector<std::string>{"Rounding up size to full physical extent 8.00 KiB"});
}

TEST_CASE("VolumeService describes an overflowed snapshot as INVALID, and its I/O fails") {
  TestRoot t;
  auto service = t.start();
  // A 4 MiB COW store under a 16 MiB origin: rewriting the origin fills it.
  ok(*service,
     {{"op", "lvcreate_snapshot"}, {"vg", "vg0"}, {"origin", "data"}, {"lv", "snap"}, {"extents", 1u}});
  auto data = must(service->connect("vg0/data"));
  REQUIRE(write_at(*data, 0, pattern(0, 16 * kMiB, 1)).ok());

  const std::string description = description_of(*service, "vg0/snap");
  CHECK_THAT(description, StartsWith("16.00 MiB, snapshot of vg0/data, Data% 100.00, INVALID (COW 4.00 MiB"));
  CHECK(lvs_entry(*service, "snap").at("valid") == false);
  auto snap = must(service->connect("vg0/snap"));
  std::vector<uint8_t> buf(4096);
  CHECK(snap->io([&](Target& dev) { return dev.read(0, buf); }).errnum() == EIO);
  // The origin carries on.
  CHECK(byte_diff(read_at(*data, 0, kMiB), pattern(0, kMiB, 1)) == "");
  service->disconnect(snap);
  service->disconnect(data);
}

TEST_CASE("VolumeService: clients' I/O and snapshot changes run at once without deadlock or error") {
  TestRoot t;
  auto service = t.start();
  auto data = must(service->connect("vg0/data"));
  auto other = must(service->connect("vg0/other"));
  std::atomic<bool> stop{false};
  std::atomic<int> io_errors{0};
  std::atomic<int> writes{0};
  std::vector<std::thread> clients;
  for (const auto& exp : {data, other}) {
    clients.emplace_back([&, exp] {
      uint32_t generation = 0;
      while (!stop.load()) {
        const uint64_t offset = (generation % 16) * 64 * 1024;
        if (!write_at(*exp, offset, pattern(offset, 64 * 1024, generation)).ok()) io_errors.fetch_add(1);
        writes.fetch_add(1);
        ++generation;
      }
    });
  }
  for (int round = 0; round < 8; ++round) {
    ok(*service,
       {{"op", "lvcreate_snapshot"}, {"vg", "vg0"}, {"origin", "data"}, {"lv", "snap"}, {"extents", 2u}});
    // Each snapshot holds what the origin held when it was taken: it stays
    // the same while the origin keeps changing.
    auto snap = must(service->connect("vg0/snap"));
    const std::vector<uint8_t> first = read_at(*snap, 0, kMiB);
    ok(*service, {{"op", "lvs"}});
    CHECK(byte_diff(read_at(*snap, 0, kMiB), first) == "");
    service->disconnect(snap);
    ok(*service, {{"op", "lvremove"}, {"vg", "vg0"}, {"lv", "snap"}});
  }
  stop = true;
  for (std::thread& th : clients) th.join();
  CHECK(io_errors == 0);
  CHECK(writes > 0);
  CHECK(service->flush_all().ok());
  service->disconnect(data);
  service->disconnect(other);
}

namespace {

// A service over `t` with its log lines collected; by default with
// lvm.conf's autoextend on (70%, +20%).
struct LoggedService {
  std::mutex mu;
  std::vector<std::string> lines;
  std::unique_ptr<VolumeService> service;

  explicit LoggedService(
      TestRoot& t, bool autoextend = true,
      std::chrono::milliseconds monitor_interval = VolumeService::Options{}.monitor_interval,
      bool write_back = false) {
    if (autoextend) {
      std::ofstream(t.root + "/lvm.conf")
          << "activation {\n\tsnapshot_autoextend_threshold = 70\n\tsnapshot_autoextend_percent = 20\n}\n";
    }
    VolumeService::Options options;
    options.log_error = [this](const std::string& line) {
      std::lock_guard lock(mu);
      lines.push_back(line);
    };
    options.monitor_interval = monitor_interval;
    options.write_back.enabled = write_back;
    service = t.start(std::move(options));
  }
  // The lines logged since the last call.
  std::vector<std::string> taken() {
    std::lock_guard lock(mu);
    return std::exchange(lines, {});
  }
  bool logged(const std::string& line) {
    std::lock_guard lock(mu);
    return std::find(lines.begin(), lines.end(), line) != lines.end();
  }
  std::string log() {
    std::lock_guard lock(mu);
    std::string all;
    for (const auto& l : lines) all += l + "\n";
    return all;
  }
};

// The first `bytes` of `exp` written with pattern 1 by four threads, a
// quarter each, 256 KiB at a time; the count of failed writes.
int write_in_four_threads(Export& exp, uint64_t bytes) {
  std::atomic<int> failed{0};
  std::vector<std::thread> writers;
  writers.reserve(4);
  const uint64_t quarter = bytes / 4;
  for (uint64_t w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      for (uint64_t off = w * quarter; off < (w + 1) * quarter; off += 256 * 1024) {
        if (!write_at(exp, off, pattern(off, 256 * 1024, 1)).ok()) ++failed;
      }
    });
  }
  for (auto& th : writers) th.join();
  return failed;
}

}  // namespace

TEST_CASE("VolumeService autoextend: lvm.conf's policy grows a filling snapshot, which never overflows") {
  TestRoot t;
  LoggedService a(t);
  VolumeService& service = *a.service;
  // 4 MiB of COW under a 16 MiB origin: rewriting the origin would fill it
  // four times over (the overflow test above).
  ok(service,
     {{"op", "lvcreate_snapshot"}, {"vg", "vg0"}, {"origin", "data"}, {"lv", "snap"}, {"extents", 1u}});
  auto data = must(service.connect("vg0/data"));
  const int failed = write_in_four_threads(*data, 16 * kMiB);
  INFO(a.log());
  CHECK(failed == 0);
  const json snap = lvs_entry(service, "snap");
  CHECK(snap.at("valid") == true);
  CHECK(
      a.logged("Size of logical volume vg0/snap changed from 4.00 MiB (1 extents) to 8.00 MiB (2 extents)."));
  CHECK(a.logged("Logical volume vg0/snap successfully resized."));
  // The snapshot still reads the origin as it was (zeroes), and lvm2's
  // metadata on disk has the grown COW LV.
  auto snap_export = must(service.connect("vg0/snap"));
  CHECK(read_at(*snap_export, 0, 16 * kMiB) == std::vector<uint8_t>(16 * kMiB, 0));
  service.disconnect(snap_export);
  service.disconnect(data);
  auto disk = must(vg::VolumeManager::open(t.root)).read_vg("vg0");
  REQUIRE(disk.ok());
  CHECK(disk->vg.find_lv("snap")->extent_count() >= 5);
}

TEST_CASE(
    "VolumeService autoextend in write-back mode: origin writes and the snapshot's own writes grow it") {
  TestRoot t;
  LoggedService a(t, /*autoextend=*/true, VolumeService::Options{}.monitor_interval, /*write_back=*/true);
  VolumeService& service = *a.service;
  ok(service,
     {{"op", "lvcreate_snapshot"}, {"vg", "vg0"}, {"origin", "data"}, {"lv", "snap"}, {"extents", 1u}});
  auto data = must(service.connect("vg0/data"));
  const int failed = write_in_four_threads(*data, 8 * kMiB);
  // The writes are pending; flushing them all needs the store to grow
  // meanwhile (flush_all held exports_mu_, which autoextend takes, once).
  REQUIRE(service.flush_all().ok());
  // 8 MiB copied out of the origin, 8 MiB written to the snapshot itself:
  // four times the 4 MiB it started with.
  auto snap_export = must(service.connect("vg0/snap"));
  REQUIRE(write_at(*snap_export, 8 * kMiB, pattern(8 * kMiB, 8 * kMiB, 2)).ok());
  INFO(a.log());
  CHECK(failed == 0);
  CHECK(lvs_entry(service, "snap").at("valid") == true);
  CHECK(
      a.logged("Size of logical volume vg0/snap changed from 4.00 MiB (1 extents) to 8.00 MiB (2 extents)."));
  CHECK(read_at(*snap_export, 0, 8 * kMiB) == std::vector<uint8_t>(8 * kMiB, 0));
  CHECK(byte_diff(read_at(*snap_export, 8 * kMiB, 8 * kMiB), pattern(8 * kMiB, 8 * kMiB, 2)) == "");
  CHECK(byte_diff(read_at(*data, 0, 8 * kMiB), pattern(0, 8 * kMiB, 1)) == "");
  service.disconnect(snap_export);
  service.disconnect(data);
  auto disk = must(vg::VolumeManager::open(t.root)).read_vg("vg0");
  REQUIRE(disk.ok());
  CHECK(disk->vg.find_lv("snap")->extent_count() >= 5);
}

TEST_CASE(
    "VolumeService autoextend: with the VG full the snapshot overflows as before, and the log says why") {
  TestRoot t;
  LoggedService a(t);
  VolumeService& service = *a.service;
  ok(service,
     {{"op", "lvcreate_snapshot"}, {"vg", "vg0"}, {"origin", "data"}, {"lv", "snap"}, {"extents", 1u}});
  // Every free extent taken.
  const uint64_t free = vg::free_extent_count(must(vg::VolumeManager::open(t.root)).read_vg("vg0")->vg);
  ok(service, {{"op", "lvcreate"}, {"vg", "vg0"}, {"lv", "filler"}, {"extents", free}});
  auto data = must(service.connect("vg0/data"));
  REQUIRE(write_at(*data, 0, pattern(0, 16 * kMiB, 1)).ok());
  INFO(a.log());
  CHECK(lvs_entry(service, "snap").at("valid") == false);
  CHECK(
      a.logged("Failed to extend snapshot vg0/snap: Insufficient free space: 1 extents needed, but only 0 "
               "available"));
  CHECK(byte_diff(read_at(*data, 0, kMiB), pattern(0, kMiB, 1)) == "");
  service.disconnect(data);
}

TEST_CASE("VolumeService monitor: dmeventd's warnings as a snapshot fills, and when it overflows") {
  TestRoot t;
  LoggedService a(t, /*autoextend=*/false, std::chrono::milliseconds(0));  // the test looks itself
  auto& service = a.service;
  ok(*service,
     {{"op", "lvcreate_snapshot"}, {"vg", "vg0"}, {"origin", "data"}, {"lv", "snap"}, {"extents", 1u}});
  auto data = must(service->connect("vg0/data"));
  auto taken = [&] { return a.taken(); };
  REQUIRE(write_at(*data, 0, pattern(0, 2 * kMiB, 1)).ok());  // about half of the 4 MiB store
  service->monitor_snapshots();
  CHECK(taken().empty());
  REQUIRE(write_at(*data, 2 * kMiB, pattern(2 * kMiB, 1536 * 1024, 1)).ok());  // past 80 %
  service->monitor_snapshots();
  std::vector<std::string> warned = taken();
  REQUIRE(warned.size() == 1);
  CHECK_THAT(warned[0],
             Catch::StartsWith("WARNING: Snapshot vg0-snap is now 8") && Catch::EndsWith("% full."));
  service->monitor_snapshots();
  CHECK(taken().empty());                                               // the same level is not warned twice
  REQUIRE(write_at(*data, 4 * kMiB, pattern(4 * kMiB, kMiB, 1)).ok());  // overflows
  service->monitor_snapshots();
  CHECK(taken() == std::vector<std::string>{
                       "WARNING: Snapshot vg0-snap changed state to: Invalid and should be removed."});
  service->disconnect(data);
}

TEST_CASE("VolumeService monitor: lvchange --monitor n silences a snapshot, y watches it again") {
  TestRoot t;
  LoggedService a(t, /*autoextend=*/false, std::chrono::milliseconds(0));
  auto& service = a.service;
  ok(*service,
     {{"op", "lvcreate_snapshot"}, {"vg", "vg0"}, {"origin", "data"}, {"lv", "snap"}, {"extents", 1u}});
  auto taken = [&] { return a.taken(); };
  auto monitored = [&] {
    auto reply = service->handle({{"op", "lvs"}});
    for (const auto& lv : reply.body.at("lvs")) {
      if (lv.at("lv") == "snap") return lv.value("monitored", true);
    }
    FAIL("no snap in lvs");
    return false;
  };
  CHECK(monitored());
  ok(*service,
     {{"op", "lvchange"}, {"vg", "vg0"}, {"lv", "data"}, {"monitor", false}});  // through its origin
  CHECK_FALSE(monitored());
  auto data = must(service->connect("vg0/data"));
  REQUIRE(write_at(*data, 0, pattern(0, 3584 * 1024, 1)).ok());  // past 80 % of the 4 MiB store
  service->monitor_snapshots();
  CHECK(taken().empty());
  ok(*service, {{"op", "lvchange"}, {"vg", "vg0"}, {"lv", "snap"}, {"monitor", true}});
  CHECK(monitored());
  service->monitor_snapshots();
  std::vector<std::string> warned = taken();
  REQUIRE(warned.size() == 1);
  CHECK_THAT(warned[0], Catch::StartsWith("WARNING: Snapshot vg0-snap is now 8"));
  service->disconnect(data);
}

TEST_CASE("VolumeService merge: copying home into an origin grows its other, autoextended snapshot") {
  TestRoot t;
  LoggedService a(t);
  VolumeService& service = *a.service;
  ok(service, {{"op", "lvcreate_snapshot"}, {"vg", "vg0"}, {"origin", "data"}, {"lv", "s"}, {"extents", 5u}});
  auto data = must(service.connect("vg0/data"));
  REQUIRE(write_at(*data, 0, pattern(0, 12 * kMiB, 1)).ok());
  service.disconnect(data);
  // Taken after the writes: the merge's copies home overwrite 12 MiB that
  // this 4 MiB snapshot must first save, so it has to grow on the way.
  ok(service,
     {{"op", "lvcreate_snapshot"}, {"vg", "vg0"}, {"origin", "data"}, {"lv", "small"}, {"extents", 1u}});
  const control::Response started =
      ok(service, {{"op", "lvconvert"}, {"vg", "vg0"}, {"lv", "s"}, {"merge", true}});
  CHECK(started.body.value("started", false));
  bool merged = false;
  for (int i = 0; i < 300 && !merged; ++i) {
    merged = a.logged("Merge of snapshot into logical volume vg0/data has finished.");
    if (!merged) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  INFO(a.log());
  REQUIRE(merged);
  CHECK_FALSE(lvs_entry(service, "data").value("merging", false));
  CHECK(lvs_entry(service, "small").at("valid") == true);
  auto origin = must(service.connect("vg0/data"));
  CHECK(read_at(*origin, 0, 16 * kMiB) == std::vector<uint8_t>(16 * kMiB, 0));
  service.disconnect(origin);
  auto small = must(service.connect("vg0/small"));
  CHECK(read_at(*small, 0, 12 * kMiB) == pattern(0, 12 * kMiB, 1));
  service.disconnect(small);
}
