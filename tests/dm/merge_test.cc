// The snapshot-merge target (invariants 13-15 in cowsnap/dm/snapshot.h): the
// origin shows the merging snapshot at once, keeps taking writes while the
// chunks go home, and another snapshot of the origin keeps its view.
#include <catch2/catch.hpp>

#include <atomic>
#include <cerrno>
#include <mutex>
#include <random>
#include <thread>

#include "cowsnap/dm/snapshot.h"
#include "cowsnap/io/devices.h"
#include "support/patterns.h"

using namespace cowsnap;
using cowsnap::testing::byte_diff;
using cowsnap::testing::pattern;

namespace {

constexpr uint64_t kOrigin = 1 << 20;
constexpr uint64_t kCow = 1536 << 10;  // room for every chunk of the origin: no overflow

std::vector<uint8_t> read_all(Target& t) {
  std::vector<uint8_t> bytes(t.size_bytes());
  REQUIRE(t.read(0, bytes).ok());
  return bytes;
}

// Origin, the snapshot to merge (4 KiB chunks) and another one (8 KiB
// chunks), all on one disk so that one power cut hits them at once.
struct Machine {
  std::shared_ptr<MemoryDevice> platter = std::make_shared<MemoryDevice>(kOrigin + 2 * kCow, "disk");
  std::shared_ptr<FaultyDevice> disk = std::make_shared<FaultyDevice>(platter);
  std::shared_ptr<SliceDevice> real = std::make_shared<SliceDevice>(disk, 0, kOrigin);
  std::shared_ptr<SliceDevice> cow1 = std::make_shared<SliceDevice>(disk, kOrigin, kCow);
  std::shared_ptr<SliceDevice> cow2 = std::make_shared<SliceDevice>(disk, kOrigin + kCow, kCow);
  std::shared_ptr<Origin> origin;
  std::shared_ptr<SnapshotTarget> merging, other;

  // The snapshots as they are on disk now (create: new stores).
  void attach(bool create) {
    origin = Origin::create(real, "real");
    merging = std::move(open_snapshot(origin, {cow1, "cow1", 'P', 8, create})).value();
    other = std::move(open_snapshot(origin, {cow2, "cow2", 'P', 16, create})).value();
  }

  // The merging snapshot taken of pattern 0; then the origin changed
  // (pattern 1) in runs and single chunks; the snapshot written itself
  // (pattern 2); the other snapshot taken after.
  void prepare() {
    REQUIRE(real->write(0, pattern(0, kOrigin, 0)).ok());
    attach(true);
    SnapshotOriginTarget target(origin);
    for (uint64_t at : {uint64_t{0}, uint64_t{20480}, uint64_t{65536}, uint64_t{300000}, uint64_t{770048}}) {
      REQUIRE(target.write(at, pattern(at, 40960, 1)).ok());
    }
    for (uint64_t at = 400 * 1024; at < 500 * 1024; at += 12 * 1024) {
      REQUIRE(target.write(at, pattern(at, 4096, 1)).ok());
    }
    REQUIRE(merging->write(200 * 1024, pattern(200 * 1024, 10000, 2)).ok());
    origin->detach_snapshot(other);
    other = std::move(open_snapshot(origin, {cow2, "cow2", 'P', 16, true})).value();
    REQUIRE(target.write(600 * 1024, pattern(600 * 1024, 50000, 3)).ok());
    REQUIRE(disk->flush().ok());
  }
};

// Runs merge_next until done; false on an error.
bool merge_all(Origin& origin, uint64_t max_bytes, uint64_t* steps = nullptr) {
  for (;;) {
    auto step = origin.merge_next(max_bytes);
    if (!step.ok()) return false;
    if (step->done) return true;
    if (steps != nullptr) ++*steps;
  }
}

}  // namespace

TEST_CASE("merge: the origin shows the snapshot at once and takes writes while the chunks go home") {
  Machine m;
  m.prepare();
  const std::vector<uint8_t> snapshot_view = read_all(*m.merging);
  const std::vector<uint8_t> other_view = read_all(*m.other);
  SnapshotOriginTarget target(m.origin);
  REQUIRE(byte_diff(read_all(target), snapshot_view) != "");

  REQUIRE(m.origin->start_merge(m.merging).ok());
  CHECK(byte_diff(read_all(target), snapshot_view) == "");
  std::vector<uint8_t> buf(4096);
  CHECK(m.merging->read(0, buf).errnum() == EBUSY);
  CHECK(m.origin->start_merge(m.merging).errnum() == EBUSY);

  // Writers through the origin while the merge runs, in small steps; the
  // model is the snapshot's view with their writes on top.
  std::vector<uint8_t> model = snapshot_view;
  std::mutex model_mu;
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> writers;
  for (uint32_t w = 0; w < 2; ++w) {
    writers.emplace_back([&, w] {
      std::mt19937_64 rng(w + 1);
      for (uint32_t i = 0; !stop.load() || i < 20; ++i) {
        // Each writer in its own half, so neither overtakes the other.
        const uint64_t half = kOrigin / 2;
        const uint64_t at = w * half + (rng() % ((half - 40 * 512) / 512)) * 512;
        const size_t n = 512 * (1 + rng() % 40);
        const std::vector<uint8_t> data = pattern(at, n, 10 + w * 1000 + i);
        std::lock_guard lock(model_mu);
        if (!target.write(at, data).ok()) ++bad;
        std::copy(data.begin(), data.end(), model.begin() + static_cast<std::ptrdiff_t>(at));
        std::vector<uint8_t> back(n);
        if (!target.read(at, back).ok() || back != data) ++bad;
      }
    });
  }
  uint64_t steps = 0;
  const bool merged = merge_all(*m.origin, 3 * 4096, &steps);
  stop = true;
  for (auto& t : writers) t.join();
  REQUIRE(merged);
  CHECK(bad.load() == 0);
  CHECK(steps > 10);
  CHECK(m.merging->exception_count() == 0);
  const StoreUsage usage = m.merging->usage();
  CHECK(usage.allocated_sectors == usage.metadata_sectors);  // Data% 0: the kernel's end of a merge
  CHECK(byte_diff(read_all(target), model) == "");
  CHECK(byte_diff(read_all(*m.other), other_view) == "");

  // Done: the snapshot leaves, the origin serves its real device alone.
  m.origin->detach_snapshot(m.merging);
  CHECK(m.origin->merging_snapshot() == nullptr);
  CHECK(byte_diff(read_all(target), model) == "");
  std::vector<uint8_t> real(kOrigin);
  REQUIRE(m.real->read(0, real).ok());
  CHECK(byte_diff(real, model) == "");
}

TEST_CASE("merge: refused for an invalid snapshot, a transient one and a write-back origin") {
  auto real = std::make_shared<MemoryDevice>(kOrigin, "real");
  auto origin = Origin::create(real, "real");
  auto invalid =
      std::move(open_snapshot(origin, {std::make_shared<MemoryDevice>(kCow), "c1", 'P', 8, true})).value();
  invalid->invalidate(Status::Error(EIO, "test"));
  CHECK(origin->start_merge(invalid).errnum() == EINVAL);
  auto transient =
      std::move(open_snapshot(origin, {std::make_shared<MemoryDevice>(kCow), "c2", 'N', 8, true})).value();
  CHECK(origin->start_merge(transient).errnum() == ENOTSUP);
  CHECK(origin->merge_next(4096).status().errnum() == EINVAL);

  auto wb = Origin::create(real, "real", {.enabled = true});
  auto snap =
      std::move(open_snapshot(wb, {std::make_shared<MemoryDevice>(kCow), "c3", 'P', 8, true})).value();
  CHECK(wb->start_merge(snap).errnum() == ENOTSUP);
}

TEST_CASE("merge: a power cut at any point, then a restart, finishes with the same content") {
  uint64_t total_ops = 0;
  std::vector<uint8_t> snapshot_view, other_view;
  {
    Machine m;
    m.prepare();
    snapshot_view = read_all(*m.merging);
    other_view = read_all(*m.other);
    REQUIRE(m.origin->start_merge(m.merging).ok());
    const uint64_t before = m.disk->operations();
    REQUIRE(merge_all(*m.origin, 5 * 4096));
    total_ops = m.disk->operations() - before;
  }
  REQUIRE(total_ops > 20);
  for (uint64_t cut = 0; cut < total_ops; cut += 1 + cut / 8) {
    INFO("power cut after " << cut << " of " << total_ops << " operations of the merge");
    Machine m;
    m.prepare();
    REQUIRE(m.origin->start_merge(m.merging).ok());
    m.disk->power_cut_after(cut);
    CHECK_FALSE(merge_all(*m.origin, 5 * 4096));
    CHECK(m.origin->merge_failed());
    m.origin.reset();
    m.merging.reset();
    m.other.reset();
    // Restart over what survived on the platter.
    m.disk = std::make_shared<FaultyDevice>(m.platter);
    m.real = std::make_shared<SliceDevice>(m.disk, 0, kOrigin);
    m.cow1 = std::make_shared<SliceDevice>(m.disk, kOrigin, kCow);
    m.cow2 = std::make_shared<SliceDevice>(m.disk, kOrigin + kCow, kCow);
    m.attach(false);
    REQUIRE(m.merging->valid());
    REQUIRE(m.other->valid());
    CHECK(byte_diff(read_all(*m.other), other_view) == "");
    REQUIRE(m.origin->start_merge(m.merging).ok());
    SnapshotOriginTarget target(m.origin);
    CHECK(byte_diff(read_all(target), snapshot_view) == "");
    REQUIRE(merge_all(*m.origin, 7 * 4096));
    CHECK(byte_diff(read_all(target), snapshot_view) == "");
    CHECK(byte_diff(read_all(*m.other), other_view) == "");
  }
}
