// The origin's I/O barrier prefers the suspender: once hold_io() is waiting,
// new requests wait and the ones in flight drain, so online snapshot
// creation finishes under any load. Copy-outs to several snapshots run on a
// fixed pool of threads, not a thread per request.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <random>
#include <thread>

#include "cowsnap/dm/snapshot.h"
#include "cowsnap/io/devices.h"
#include "support/patterns.h"

using namespace cowsnap;
using cowsnap::testing::pattern;

namespace {

constexpr uint64_t kOrigin = 1 << 20;

// Each write returns only once another write has started after it (or
// 20 ms have passed): with two or more writers looping back to back, some
// write is always in flight, so a reader-preferring lock never empties.
class OverlappingDevice final : public DeviceWrapper {
 public:
  using DeviceWrapper::DeviceWrapper;
  Status write(uint64_t offset, std::span<const uint8_t> buf) override {
    {
      std::unique_lock lock(mu_);
      const uint64_t mine = ++started_;
      cv_.notify_all();
      cv_.wait_for(lock, std::chrono::milliseconds(20), [&] { return started_ > mine; });
    }
    return DeviceWrapper::write(offset, buf);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t started_ = 0;
};

// Every write takes a millisecond, so copy-out helpers live long enough to
// be counted.
class SlowDevice final : public DeviceWrapper {
 public:
  using DeviceWrapper::DeviceWrapper;
  Status write(uint64_t offset, std::span<const uint8_t> buf) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return DeviceWrapper::write(offset, buf);
  }
};

size_t thread_count() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/task")) ++n;
  return n;
}

}  // namespace

TEST_CASE("an online snapshot attaches while writers hammer the origin without pause") {
  auto real = std::make_shared<OverlappingDevice>(std::make_shared<MemoryDevice>(kOrigin, "real"));
  auto origin = Origin::create(real, "real");
  std::atomic<bool> stop{false}, attached{false};
  std::atomic<uint64_t> writes{0}, writes_after_attach{0};
  std::vector<std::thread> writers;
  for (uint64_t t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      std::vector<uint8_t> buf = pattern(0, 4096, 1);
      while (!stop.load()) {
        const uint64_t block = rng() % (kOrigin / 4096);
        if (!origin->write_origin(block * 4096, buf).ok()) return;
        ++writes;
        if (attached.load()) ++writes_after_attach;
      }
    });
  }
  while (writes.load() < 50) std::this_thread::yield();

  std::thread attacher([&] {
    auto snap = open_snapshot(origin, {std::make_shared<MemoryDevice>(kOrigin, "cow"), "cow", 'P', 8, true});
    if (snap.ok()) attached = true;
  });
  // Generous: the writers stop on their own only after a minute.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!attached.load() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const bool attached_while_writing = attached.load();
  const auto resumed_by = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (attached_while_writing && writes_after_attach.load() < 20 &&
         std::chrono::steady_clock::now() < resumed_by) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  stop = true;
  for (auto& w : writers) w.join();
  attacher.join();
  REQUIRE(attached_while_writing);
  CHECK(writes_after_attach.load() >= 20);  // the writers carried on
}

TEST_CASE("copy-outs to many snapshots use a fixed number of threads") {
  auto real = std::make_shared<MemoryDevice>(kOrigin, "real");
  auto origin = Origin::create(real, "real");
  for (int i = 0; i < 6; ++i) {
    auto cow = std::make_shared<SlowDevice>(std::make_shared<MemoryDevice>(2 * kOrigin, "cow"));
    REQUIRE(open_snapshot(origin, {cow, "cow", 'P', 8, true}).ok());
  }
  const size_t before = thread_count();
  std::atomic<bool> stop{false};
  std::atomic<size_t> most{0};
  std::thread sampler([&] {
    while (!stop.load()) {
      most = std::max(most.load(), thread_count());
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  constexpr uint64_t kWriters = 8;
  std::vector<std::thread> writers;
  // Catch's assertions are not thread-safe: the writers count failures.
  std::atomic<int> failed{0};
  for (uint64_t t = 0; t < kWriters; ++t) {
    writers.emplace_back([&, t] {
      std::vector<uint8_t> buf = pattern(0, 4096, 1);
      for (uint64_t i = 0; i < 24; ++i) {
        if (!origin->write_origin((i * kWriters + t) * 4096, buf).ok()) ++failed;
      }
    });
  }
  for (auto& w : writers) w.join();
  stop = true;
  sampler.join();
  CHECK(failed.load() == 0);
  INFO("threads before: " << before << ", most seen: " << most.load());
  // The writers and the sampler, plus a pool of at most 8 helpers.
  CHECK(most.load() <= before + kWriters + 1 + 8);
}
