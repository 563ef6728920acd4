// Crash safety: power is cut at many points while writers load the origin
// and a snapshot; after "reboot" every write that was flushed before the
// cut is present, and every snapshot still valid reads exactly its
// pre-snapshot content (invariants 1 and 4 in cowsnap/snapshot.h). Both
// modes: in write-back mode unflushed acknowledged writes may be lost,
// which the check (a block holds its flushed generation or a later one)
// allows already.
#include <catch2/catch.hpp>

#include <random>
#include <thread>
#include <tuple>

#include "cowsnap/dm/snapshot.h"
#include "cowsnap/io/devices.h"
#include "support/patterns.h"

using namespace cowsnap;
using cowsnap::testing::byte_diff;
using cowsnap::testing::fill_pattern;
using cowsnap::testing::generation_of;

namespace {

constexpr uint64_t kOrigin = 1 << 20;
constexpr uint64_t kCow = 2 << 20;
// cow1 holds 60 data chunks of the origin's 256, so it overflows under the
// load and its invalidation races the writers (docs/invalidation.md).
constexpr uint64_t kSmallCow = 62 * 4096;
constexpr uint32_t kThreads = 3;

// One disk holding origin and COW stores, so one power cut hits them all at
// the same instant.
struct Machine {
  std::shared_ptr<MemoryDevice> platter = std::make_shared<MemoryDevice>(kOrigin + 2 * kCow, "disk");
  std::shared_ptr<FaultyDevice> disk = std::make_shared<FaultyDevice>(platter);
  std::shared_ptr<SliceDevice> real = std::make_shared<SliceDevice>(disk, 0, kOrigin);
  std::shared_ptr<SliceDevice> cow1 = std::make_shared<SliceDevice>(disk, kOrigin, kSmallCow);
  std::shared_ptr<SliceDevice> cow2 = std::make_shared<SliceDevice>(disk, kOrigin + kCow, kCow);
};

}  // namespace

TEST_CASE("power cuts under load lose no flushed write and never corrupt a snapshot") {
  const bool write_back = GENERATE(false, true);
  INFO((write_back ? "write-back" : "sync") << " mode");
  int overflowed = 0;
  for (uint64_t cut_after = 5; cut_after < 2000; cut_after = cut_after * 3 / 2 + 7) {
    INFO("power cut after " << cut_after << " operations");
    Machine m;
    {
      std::vector<uint8_t> init(kOrigin);
      fill_pattern(init, 0, 0);
      REQUIRE(m.real->write(0, init).ok());
      REQUIRE(m.disk->flush().ok());
    }
    auto origin = Origin::create(m.real, "real", {write_back, 128 * 1024});
    SnapshotOriginTarget origin_target(origin);
    REQUIRE(open_snapshot(origin, {m.cow1, "cow1", 'P', 8, true}).ok());
    REQUIRE(open_snapshot(origin, {m.cow2, "cow2", 'P', 16, true}).ok());
    m.disk->power_cut_after(cut_after);

    // Each thread owns a stripe of 4 KiB blocks, so the newest generation of
    // every block is known: durable[b] is the newest generation flushed.
    std::vector<uint32_t> durable(kOrigin / 4096, 0), written(kOrigin / 4096, 0);
    std::vector<std::thread> threads;
    for (uint32_t t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        std::mt19937_64 rng(cut_after * 10 + t);
        std::vector<uint8_t> buf(4096);
        std::vector<uint64_t> since_flush;
        for (uint32_t gen = 1;; ++gen) {
          const uint64_t b = (rng() % (durable.size() / kThreads)) * kThreads + t;
          fill_pattern(buf, b * 4096, gen);
          if (!origin_target.write(b * 4096, buf).ok()) return;
          written[b] = gen;
          since_flush.push_back(b);
          if (gen % 4 == 0) {
            if (!origin_target.flush().ok()) return;
            for (uint64_t f : since_flush) durable[f] = written[f];
            since_flush.clear();
          }
        }
      });
    }
    for (auto& th : threads) th.join();
    REQUIRE(m.disk->is_cut());

    // Reboot: new stacks over the platter as the cut left it.
    auto real2 = std::make_shared<SliceDevice>(m.platter, 0, kOrigin);
    auto origin2 = Origin::create(real2, "real");
    for (auto [off, bytes, chunk] :
         {std::tuple<uint64_t, uint64_t, uint32_t>{kOrigin, kSmallCow, 8}, {kOrigin + kCow, kCow, 16}}) {
      auto snap = open_snapshot(
          origin2, {std::make_shared<SliceDevice>(m.platter, off, bytes), "cow", 'P', chunk, false});
      INFO(snap.status().message());
      REQUIRE(snap.ok());
      if (!(*snap)->valid()) {
        ++overflowed;
        continue;
      }
      std::vector<uint8_t> all(kOrigin), want(kOrigin);
      fill_pattern(want, 0, 0);
      REQUIRE((*snap)->read(0, all).ok());
      REQUIRE(byte_diff(all, want) == "");
    }
    std::vector<uint8_t> block(4096);
    for (uint64_t b = 0; b < durable.size(); ++b) {
      REQUIRE(real2->read(b * 4096, block).ok());
      const int64_t gen = generation_of(block, b * 4096, written[b]);
      INFO("block " << b << " holds generation " << gen << ", flushed " << durable[b] << ", written "
                    << written[b]);
      REQUIRE(gen >= static_cast<int64_t>(durable[b]));
    }
  }
  CHECK(overflowed > 0);  // the small store overflowed before some cuts
}
