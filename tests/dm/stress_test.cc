// Concurrency: writer threads change the origin while reader threads read
// a snapshot; every block the snapshot returns must hold its pre-snapshot
// content, never a newer generation.
#include <catch2/catch.hpp>

#include <atomic>
#include <random>
#include <thread>

#include "cowsnap/dm/snapshot.h"
#include "cowsnap/io/devices.h"
#include "support/patterns.h"

using namespace cowsnap;
using cowsnap::testing::byte_diff;
using cowsnap::testing::fill_pattern;
using cowsnap::testing::generation_of;

TEST_CASE("snapshot readers racing origin writers always see the old data") {
  constexpr uint64_t kBytes = 8 << 20;
  constexpr uint32_t kWriters = 4, kReaders = 4, kWritesPerThread = 400;
  auto real = std::make_shared<MemoryDevice>(kBytes, "real");
  {
    std::vector<uint8_t> init(kBytes);
    fill_pattern(init, 0, 0);
    REQUIRE(real->write(0, init).ok());
  }
  auto origin = Origin::create(real, "real");
  SnapshotOriginTarget origin_target(origin);
  auto cow = std::make_shared<CountingDevice>(std::make_shared<MemoryDevice>(kBytes * 2, "cow"));
  auto snap = open_snapshot(origin, {cow, "cow", 'P', 8, true});
  REQUIRE(snap.ok());
  auto snap2 =
      open_snapshot(origin, {std::make_shared<MemoryDevice>(kBytes * 2, "cow2"), "cow2", 'P', 32, true});
  REQUIRE(snap2.ok());

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> bad{0}, reads{0};
  std::vector<std::thread> threads;
  for (uint32_t w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      std::mt19937_64 rng(w + 1);
      std::vector<uint8_t> buf;
      for (uint32_t i = 0; i < kWritesPerThread; ++i) {
        const uint64_t len = 512 * (1 + rng() % 24);
        const uint64_t off = (rng() % ((kBytes - len) / 512)) * 512;
        buf.resize(len);
        fill_pattern(buf, off, 1 + w);
        if (!origin_target.write(off, buf).ok()) bad.fetch_add(1);
      }
    });
  }
  for (uint32_t r = 0; r < kReaders; ++r) {
    threads.emplace_back([&, r] {
      std::mt19937_64 rng(100 + r);
      std::vector<uint8_t> buf(64 * 1024);
      SnapshotTarget& target = r % 2 == 0 ? **snap : **snap2;
      while (!stop.load()) {
        const uint64_t off = (rng() % ((kBytes - buf.size()) / 512)) * 512;
        if (!target.read(off, buf).ok()) {
          bad.fetch_add(1);
          continue;
        }
        for (uint64_t s = 0; s < buf.size(); s += 512) {
          if (generation_of(std::span(buf).subspan(s, 512), off + s, 0) != 0) bad.fetch_add(1);
        }
        reads.fetch_add(1);
      }
    });
  }
  for (uint32_t w = 0; w < kWriters; ++w) threads[w].join();
  stop = true;
  for (size_t i = kWriters; i < threads.size(); ++i) threads[i].join();

  CHECK(bad.load() == 0);
  CHECK(reads.load() > 0);
  // A final full comparison, and group commit at work: concurrent first
  // writes shared metadata writes and flushes.
  std::vector<uint8_t> all(kBytes), want(kBytes);
  fill_pattern(want, 0, 0);
  REQUIRE((*snap)->read(0, all).ok());
  CHECK(byte_diff(all, want) == "");
  REQUIRE((*snap2)->read(0, all).ok());
  CHECK(byte_diff(all, want) == "");
  const auto counters = cow->counters();
  const uint64_t exceptions = (*snap)->exception_count();
  INFO("exceptions " << exceptions << ", cow flushes " << counters.flushes);
  CHECK(exceptions > 0);
  CHECK(counters.flushes <= 2 * exceptions + 2);
}
