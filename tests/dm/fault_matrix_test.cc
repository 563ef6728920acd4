// The engine's fault matrix: power cuts at many points under concurrent
// load that includes a store overflowing (and so invalidation racing origin
// writes), online snapshot creation, snapshot removal and the growth of a
// live snapshot's store (lvextend). After every "reboot": no flushed origin
// write is lost, and every snapshot still valid reads, block by block, what
// the origin held when it was taken. COWSNAP_FAULT_MATRIX_POINTS sets the
// number of cut points (default 1000).
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>

#include "cowsnap/dm/snapshot.h"
#include "cowsnap/io/devices.h"
#include "support/patterns.h"

using namespace cowsnap;
using cowsnap::testing::fill_pattern;

namespace {

constexpr uint64_t kBlock = 4096;
constexpr uint64_t kBlocks = 64;
constexpr uint64_t kOrigin = kBlocks * kBlock;
constexpr uint32_t kWriters = 3;

// Where each device lives on the one disk, so that one cut hits all.
struct Slot {
  uint64_t offset;
  uint64_t bytes;
  uint32_t chunk_sectors;
};
constexpr Slot kTiny{kOrigin, 12 * 4096, 8};                             // overflows early
constexpr uint64_t kGrowSmall = 40 * 4096;                               // grows to the whole slot
constexpr Slot kGrowing{kTiny.offset + kTiny.bytes, 80 * 4096, 8};       // overflows unless grown in time
constexpr Slot kOnline{kGrowing.offset + kGrowing.bytes, 80 * 4096, 8};  // taken during the load
constexpr Slot kRemoved{kOnline.offset + kOnline.bytes, 40 * 8192, 16};  // removed during the load
constexpr uint64_t kDisk = kRemoved.offset + kRemoved.bytes;

// The generation that wrote `block` (at `offset`), or -1: read from the
// pattern's first word (sector * K ^ generation << 32) and confirmed
// against the whole block, so that checking costs one block, not one per
// generation.
int64_t generation_in(std::span<const uint8_t> block, uint64_t offset) {
  uint64_t word = 0;
  for (size_t i = 0; i < 8; ++i) word |= uint64_t{block[i]} << (8 * i);
  const auto gen = static_cast<uint32_t>((word ^ ((offset / 512) * 0x9E3779B97F4A7C15ULL)) >> 32);
  std::vector<uint8_t> expect(block.size());
  fill_pattern(expect, offset, gen);
  return std::equal(expect.begin(), expect.end(), block.begin()) ? int64_t{gen} : -1;
}

uint64_t cut_points() {
  const char* env = std::getenv("COWSNAP_FAULT_MATRIX_POINTS");
  return env != nullptr ? std::max<uint64_t>(1, std::stoull(env)) : 1000;
}

// A COW device whose invalidating header writes (valid = 0) take a
// millisecond, as on a busy disk:
// invalidation then races the origin writers for real, which a power cut
// in that window catches if an origin write skips the snapshot too early.
class SlowHeaderDevice final : public DeviceWrapper {
 public:
  using DeviceWrapper::DeviceWrapper;
  Status write(uint64_t offset, std::span<const uint8_t> buf) override {
    if (offset == 0 && buf.size() > 4 && buf[4] == 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return DeviceWrapper::write(offset, buf);
  }
};

// Per block, the generations a snapshot may show: at least the newest one
// acknowledged before it was taken, at most the newest one started before
// it was in place.
struct Photograph {
  std::array<uint32_t, kBlocks> lo{}, hi{};
};

struct Tally {
  uint64_t points = 0, tiny_invalid = 0, growing_invalid = 0, grown = 0, online = 0, removed = 0;
};

class Run {
 public:
  Run(uint64_t seed, uint64_t cut_after) : rng_(seed), cut_after_(cut_after) {
    std::vector<uint8_t> init(kOrigin);
    fill_pattern(init, 0, 0);
    REQUIRE(real_->write(0, init).ok());
    REQUIRE(disk_->flush().ok());
    origin_ = Origin::create(real_, "real");
    tiny_ = take(kTiny, kTiny.bytes);
    growing_ = take(kGrowing, kGrowSmall);
    removed_ = take(kRemoved, kRemoved.bytes);
    // The control thread's events, at random points of the load.
    create_at_ = rng_() % 1500;
    remove_at_ = rng_() % 1500;
    grow_at_ = rng_() % 1500;
    base_ = disk_->operations();
  }

  void load() {
    disk_->power_cut_after(cut_after_);
    std::vector<std::thread> threads;
    for (uint32_t t = 0; t < kWriters; ++t) threads.emplace_back([this, t] { write_origin(t); });
    threads.emplace_back([this] { read_snapshots(); });
    threads.emplace_back([this] { control(); });
    for (auto& th : threads) th.join();
  }

  // Reboots over the platter as the cut left it and checks everything.
  void check(Tally& tally) {
    REQUIRE(disk_->is_cut());
    CHECK(bad_reads_.load() == 0);
    auto real = std::make_shared<SliceDevice>(platter_, 0, kOrigin);
    std::vector<uint8_t> block(kBlock);
    for (uint64_t b = 0; b < kBlocks; ++b) {
      REQUIRE(real->read(b * kBlock, block).ok());
      const int64_t gen = generation_in(block, b * kBlock);
      INFO("origin block " << b << " holds generation " << gen << ", flushed " << durable_[b].load());
      REQUIRE(gen >= static_cast<int64_t>(durable_[b].load()));
      REQUIRE(gen <= static_cast<int64_t>(issued_[b].load()));
    }
    auto origin = Origin::create(real, "real");
    Photograph initial;  // all generation 0
    tally.tiny_invalid += verify(*origin, kTiny, kTiny.bytes, initial) ? 0U : 1U;
    tally.growing_invalid +=
        verify(*origin, kGrowing, grown_ ? kGrowing.bytes : kGrowSmall, initial) ? 0U : 1U;
    if (!removing_) verify(*origin, kRemoved, kRemoved.bytes, initial);
    if (online_taken_) verify(*origin, kOnline, kOnline.bytes, online_);
    tally.grown += grown_ ? 1U : 0U;
    tally.online += online_taken_ ? 1U : 0U;
    tally.removed += removing_ ? 1U : 0U;
    ++tally.points;
  }

 private:
  std::shared_ptr<BlockDevice> slice(const Slot& slot, uint64_t bytes) const {
    return std::make_shared<SlowHeaderDevice>(std::make_shared<SliceDevice>(disk_, slot.offset, bytes));
  }
  std::shared_ptr<SnapshotTarget> take(const Slot& slot, uint64_t bytes) {
    auto snap = open_snapshot(origin_, {slice(slot, bytes), "cow", 'P', slot.chunk_sectors, true});
    REQUIRE(snap.ok());
    return *snap;
  }

  // Whether the snapshot in `slot` is valid after the reboot; if so, it
  // must read as `photo` allows.
  bool verify(Origin& origin, const Slot& slot, uint64_t bytes, const Photograph& photo) const {
    auto cow = std::make_shared<SliceDevice>(platter_, slot.offset, bytes);
    auto snap = open_snapshot(origin.shared_from_this(), {cow, "cow", 'P', slot.chunk_sectors});
    INFO("snapshot at " << slot.offset << ": " << snap.status().to_string());
    REQUIRE(snap.ok());
    const bool valid = (*snap)->valid();
    std::vector<uint8_t> block(kBlock);
    for (uint64_t b = 0; valid && b < kBlocks; ++b) {
      REQUIRE((*snap)->read(b * kBlock, block).ok());
      const int64_t gen = generation_in(block, b * kBlock);
      INFO("snapshot at " << slot.offset << ", block " << b << ": generation " << gen << ", allowed "
                          << photo.lo[b] << ".." << photo.hi[b]);
      REQUIRE(gen >= static_cast<int64_t>(photo.lo[b]));
      REQUIRE(gen <= static_cast<int64_t>(photo.hi[b]));
    }
    origin.detach_snapshot(*snap);
    return valid;
  }

  // Each writer owns the blocks b with b % kWriters == t, so each block's
  // generations only grow and the newest flushed one is known.
  void write_origin(uint32_t t) {
    std::mt19937_64 rng(cut_after_ * 10 + t);
    std::vector<uint8_t> buf(kBlock);
    std::vector<uint64_t> since_flush;
    for (uint32_t gen = 1;; ++gen) {
      const uint64_t b = (rng() % (kBlocks / kWriters)) * kWriters + t;
      fill_pattern(buf, b * kBlock, gen);
      issued_[b] = gen;
      if (!origin_->write_origin(b * kBlock, buf).ok()) return;
      written_[b] = gen;
      since_flush.push_back(b);
      if (gen % 4 == 0) {
        if (!origin_->flush_origin().ok()) return;
        for (uint64_t f : since_flush) durable_[f] = std::max(durable_[f].load(), written_[f].load());
        since_flush.clear();
      }
    }
  }

  // Reads of the snapshots taken at the start: any that succeeds shows
  // generation 0 (invariants 2 and 3), even while the store overflows.
  void read_snapshots() {
    std::mt19937_64 rng(cut_after_);
    std::vector<uint8_t> block(kBlock);
    while (!disk_->is_cut()) {
      const uint64_t b = rng() % kBlocks;
      for (SnapshotTarget* s : {tiny_.get(), growing_.get()}) {
        if (s->read(b * kBlock, block).ok() && generation_in(block, b * kBlock) != 0) ++bad_reads_;
      }
      std::this_thread::yield();
    }
  }

  bool reached(uint64_t ops) const {
    while (disk_->operations() < base_ + ops) {
      if (disk_->is_cut()) return false;
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
    return !disk_->is_cut();
  }

  void control() {
    std::array<std::pair<uint64_t, int>, 3> events{{{create_at_, 0}, {remove_at_, 1}, {grow_at_, 2}}};
    std::sort(events.begin(), events.end());
    for (auto [at, what] : events) {
      if (!reached(at)) return;
      if (what == 0) {
        for (uint64_t b = 0; b < kBlocks; ++b) online_.lo[b] = written_[b].load();
        auto snap = open_snapshot(origin_, {slice(kOnline, kOnline.bytes), "cow", 'P', 8, true});
        if (!snap.ok()) continue;
        for (uint64_t b = 0; b < kBlocks; ++b) online_.hi[b] = issued_[b].load();
        online_taken_ = true;
      } else if (what == 1) {
        removing_ = true;  // lvm2 forgets it first: after a cut it is gone
        origin_->detach_snapshot(removed_);
      } else {
        // As the volume layer grows it, with no barrier: the new room is
        // readied, the VG metadata says grown, the store takes the room.
        auto grown = slice(kGrowing, kGrowing.bytes);
        if (!growing_->prepare_growth(*grown).ok()) continue;
        grown_ = true;
        if (!growing_->grow_store(grown).ok()) return;
      }
    }
  }

  std::mt19937_64 rng_;
  const uint64_t cut_after_;
  std::shared_ptr<MemoryDevice> platter_ = std::make_shared<MemoryDevice>(kDisk, "disk");
  std::shared_ptr<FaultyDevice> disk_ = std::make_shared<FaultyDevice>(platter_);
  std::shared_ptr<SliceDevice> real_ = std::make_shared<SliceDevice>(disk_, 0, kOrigin);
  std::shared_ptr<Origin> origin_;
  std::shared_ptr<SnapshotTarget> tiny_, growing_, removed_;
  uint64_t create_at_ = 0, remove_at_ = 0, grow_at_ = 0, base_ = 0;

  std::array<std::atomic<uint32_t>, kBlocks> issued_{}, written_{}, durable_{};
  std::atomic<uint64_t> bad_reads_{0};
  // Written by the control thread, read after it is joined.
  Photograph online_;
  bool online_taken_ = false, removing_ = false, grown_ = false;
};

}  // namespace

TEST_CASE("fault matrix: power cuts under load with overflow, online create, remove and grow") {
  const uint64_t points = cut_points();
  Tally tally;
  const auto start = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < points; ++i) {
    // Cut points spread over the first 2500 operations of the load, where
    // the events happen; a few land later.
    const uint64_t cut_after = 1 + (i * 2500 / points + i * 7919 % 97) % 3000;
    INFO("cut point " << i << ": power cut after " << cut_after << " operations");
    Run run(i, cut_after);
    run.load();
    run.check(tally);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  WARN("fault matrix: " << tally.points << " cut points in " << seconds << " s; after reboot the tiny store "
                        << "was invalid " << tally.tiny_invalid << " times, the growing one "
                        << tally.growing_invalid << "; grown before the cut " << tally.grown
                        << ", online snapshot taken " << tally.online << ", removal begun " << tally.removed);
  // Every part of the matrix was exercised, and not always.
  CHECK(tally.tiny_invalid > 0);
  CHECK(tally.tiny_invalid < tally.points);
  CHECK(tally.growing_invalid > 0);
  CHECK(tally.grown > 0);
  CHECK(tally.grown < tally.points);
  CHECK(tally.online > 0);
  CHECK(tally.online < tally.points);
  CHECK(tally.removed > 0);
}
