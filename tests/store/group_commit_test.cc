// Group commit: the queue itself, and the persistent store sharing metadata
// writes and flushes among concurrent committers.
#include <catch2/catch.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "cowsnap/io/devices.h"
#include "cowsnap/store/exception_store.h"
#include "group_commit.h"
#include "store_test_util.h"

using namespace cowsnap;
using namespace cowsnap::testing;

namespace {

// Flushes take a while, as on real disks, so that committers pile up.
class SlowFlushDevice final : public DeviceWrapper {
 public:
  using DeviceWrapper::DeviceWrapper;
  Status flush() override {
    std::this_thread::sleep_for(std::chrono::microseconds(300));
    return DeviceWrapper::flush();
  }
};

template <typename Fn>
void run_threads(int n, Fn fn) {
  std::vector<std::thread> threads;
  for (int t = 0; t < n; ++t) threads.emplace_back(fn, t);
  for (auto& th : threads) th.join();
}

}  // namespace

TEST_CASE("GroupCommit: one batch at a time, every item once, each caller gets its batch's status") {
  GroupCommit<int> queue;
  std::mutex mu;
  std::vector<std::vector<int>> batches;  // guarded by mu
  std::map<int, bool> batch_ok;           // item -> its batch succeeded; guarded by mu
  std::atomic<int> in_flight{0};
  std::atomic<bool> overlapped{false};
  std::atomic<int> mismatches{0};
  constexpr int kThreads = 8;
  constexpr int kPerThread = 300;

  run_threads(kThreads, [&](int t) {
    for (int i = 0; i < kPerThread; ++i) {
      const int item = t * kPerThread + i;
      Status s = queue.commit(std::span(&item, 1), [&](std::span<const int> batch) -> Status {
        if (in_flight.fetch_add(1) != 0) overlapped = true;
        std::this_thread::sleep_for(std::chrono::microseconds(100));
        const bool ok = std::none_of(batch.begin(), batch.end(), [](int x) { return x % 97 == 0; });
        {
          std::lock_guard lock(mu);
          batches.emplace_back(batch.begin(), batch.end());
          for (int x : batch) batch_ok[x] = ok;
        }
        in_flight.fetch_sub(1);
        return ok ? Status::Ok() : Status::Error(EIO, "batch failed");
      });
      std::lock_guard lock(mu);
      if (s.ok() != batch_ok.at(item)) ++mismatches;
    }
  });

  CHECK_FALSE(overlapped);
  CHECK(mismatches == 0);
  std::multiset<int> seen;
  for (const auto& b : batches) seen.insert(b.begin(), b.end());
  CHECK(seen.size() == size_t{kThreads * kPerThread});
  CHECK(std::set<int>(seen.begin(), seen.end()).size() == seen.size());
  CHECK(batches.size() < size_t{kThreads * kPerThread});  // some batching happened
  // Each thread's items appear in its own order across batches.
  std::map<int, int> last_of_thread;
  bool ordered = true;
  for (const auto& b : batches) {
    for (int x : b) {
      auto [it, fresh] = last_of_thread.try_emplace(x / kPerThread, x);
      if (!fresh) {
        ordered = ordered && it->second < x;
        it->second = x;
      }
    }
  }
  CHECK(ordered);
}

TEST_CASE("concurrent commits share metadata writes and flushes, and all survive a reopen") {
  auto mem = std::make_shared<MemoryDevice>(3000 * kChunkBytes, "cow-g");
  fill_device(*mem, 0xAA);
  auto counting = std::make_shared<CountingDevice>(std::make_shared<SlowFlushDevice>(mem));
  auto store = std::move(create_persistent_store(counting, kChunkSectors)).value();
  counting->reset();

  constexpr int kThreads = 8;
  constexpr uint64_t kPerThread = 150;  // 1200 exceptions: batches cross areas
  std::atomic<int> failures{0};
  run_threads(kThreads, [&](int t) {
    for (uint64_t i = 0; i < kPerThread; ++i) {
      const uint64_t old_chunk = uint64_t(t) * 100000 + i;
      auto cow = store->prepare_exception();
      if (!cow.ok()) {
        ++failures;
        return;
      }
      if (!mem->write(cow->value * kChunkBytes, data_pattern(old_chunk)).ok()) ++failures;
      if (!commit_one(*store, ChunkIndex{old_chunk}, *cow).ok()) ++failures;
    }
  });
  REQUIRE(failures == 0);

  const uint64_t exceptions = kThreads * kPerThread;
  const auto c = counting->counters();
  INFO("metadata writes " << c.writes << ", flushes " << c.flushes << ", zeroings " << c.zero_ops);
  CHECK(c.writes < exceptions);
  CHECK(c.flushes < 2 * exceptions);
  // An area after a full one is zeroed, or written with entries when the
  // batch goes on into it.
  CHECK(c.zero_ops <= exceptions / kPerArea);
  CHECK(c.bytes_written <= c.writes * kChunkBytes);  // a batch writes the sectors it filled

  Opened opened = open_store(mem);
  REQUIRE(opened.status.ok());
  REQUIRE(opened.seen.size() == exceptions);
  std::set<uint64_t> olds, cows;
  for (const auto& [o, cw] : opened.seen) {
    olds.insert(o);
    cows.insert(cw);
    CHECK(read_chunk(*mem, cw) == data_pattern(o));
  }
  CHECK(olds.size() == exceptions);
  CHECK(cows.size() == exceptions);
  CHECK(opened.store->usage().allocated_sectors == store->usage().allocated_sectors);
}

TEST_CASE("a failed metadata write fails its whole batch and invalidates the store") {
  auto mem = std::make_shared<MemoryDevice>(3000 * kChunkBytes, "cow-f");
  auto faulty = std::make_shared<FaultyDevice>(std::make_shared<SlowFlushDevice>(mem));
  auto store = std::move(create_persistent_store(faulty, kChunkSectors)).value();
  faulty->fail_write_after(40);

  std::mutex mu;
  std::vector<Mapping> acknowledged;  // guarded by mu
  std::atomic<int> failed{0};
  run_threads(8, [&](int t) {
    for (uint64_t i = 0; i < 60; ++i) {
      auto cow = store->prepare_exception();
      if (!cow.ok()) {
        CHECK(cow.status().errnum() == EIO);
        return;
      }
      Status s = commit_one(*store, ChunkIndex{uint64_t(t) * 1000 + i}, *cow);
      if (!s.ok()) {
        CHECK(s.errnum() == EIO);
        CHECK_THAT(s.message(), Catch::Contains("cow-f"));
        ++failed;
        continue;
      }
      std::lock_guard lock(mu);
      acknowledged.emplace_back(uint64_t(t) * 1000 + i, cow->value);
    }
  });
  CHECK(failed > 0);
  CHECK_FALSE(store->valid());
  CHECK(acknowledged.size() < 8 * 60);

  Opened opened = open_store(mem);
  REQUIRE(opened.status.ok());
  std::set<Mapping> seen(opened.seen.begin(), opened.seen.end());
  for (const Mapping& m : acknowledged) CHECK(seen.count(m) == 1);
}

TEST_CASE("commit_exceptions: one caller's exceptions share one batch and one metadata write") {
  auto mem = std::make_shared<MemoryDevice>(3000 * kChunkBytes, "cow-m");
  auto counting = std::make_shared<CountingDevice>(mem);
  auto store = std::move(create_persistent_store(counting, kChunkSectors)).value();

  // 300 exceptions from one call: they fill area 0 and go on into area 1.
  std::vector<NewException> many;
  for (uint64_t i = 0; i < 300; ++i)
    many.push_back(NewException{ChunkIndex{i * 5}, *store->prepare_exception()});
  counting->reset();
  REQUIRE(store->commit_exceptions(many).ok());
  const auto c = counting->counters();
  CHECK(c.writes == 2);   // area 1 (new), then area 0 (made full)
  CHECK(c.flushes == 2);  // before and after the write that makes them reachable
  REQUIRE(store->commit_exceptions({}).ok());

  Opened opened = open_store(mem);
  REQUIRE(opened.status.ok());
  REQUIRE(opened.seen.size() == 300);
  for (size_t i = 0; i < 300; ++i)
    CHECK(opened.seen[i] == Mapping{many[i].old_chunk.value, many[i].cow_chunk.value});
  CHECK(opened.store->usage().metadata_sectors == 3 * 8);
}

TEST_CASE("commit_exceptions: a bad chunk refuses the whole call") {
  auto mem = std::make_shared<MemoryDevice>(600 * kChunkBytes, "cow-m");
  auto store = std::move(create_persistent_store(mem, kChunkSectors)).value();
  const std::vector<NewException> mixed = {{ChunkIndex{1}, *store->prepare_exception()},
                                           {ChunkIndex{2}, ChunkIndex{258}}};
  CHECK(store->commit_exceptions(mixed).errnum() == EINVAL);
  Opened opened = open_store(mem);
  REQUIRE(opened.status.ok());
  CHECK(opened.seen.empty());
}
