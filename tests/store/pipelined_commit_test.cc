// Pipelined group commit: two batches in flight, one flush serving the
// metadata of one and the data of the next, and errors in either stage
// failing both. The queue itself with scripted stages, then the persistent
// store over devices whose flushes can be held or failed.
#include <catch2/catch.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cowsnap/io/devices.h"
#include "cowsnap/store/exception_store.h"
#include "group_commit.h"
#include "store_test_util.h"

using namespace cowsnap;
using namespace cowsnap::testing;
using namespace std::chrono_literals;

namespace {

// Holds flush number `n` (counting from 1) until open(); fails flush
// number `fail_flush` and the write number `fail_write` (0: none).
class Gate {
 public:
  void hold(int n) {
    std::lock_guard lock(mu_);
    held_ = n;
  }
  void wait_held() {
    std::unique_lock lock(mu_);
    REQUIRE(cv_.wait_for(lock, 30s, [&] { return entered_; }));
  }
  void open() {
    std::lock_guard lock(mu_);
    opened_ = true;
    cv_.notify_all();
  }
  // Called at the start of every flush with its number.
  void pass(int n) {
    std::unique_lock lock(mu_);
    if (n != held_) return;
    entered_ = true;
    cv_.notify_all();
    cv_.wait(lock, [&] { return opened_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int held_ = 0;
  bool entered_ = false, opened_ = false;
};

// Stages that log what they are asked to do.
struct ScriptedStages {
  std::mutex mu;
  std::vector<std::string> log;  // guarded by mu
  Gate gate;
  int flushes = 0;       // guarded by mu
  int fail_flush = 0;    // this flush fails (1-based; 0: none)
  int fail_publish = 0;  // publishing the batch with this first item fails
  bool invalid = false;  // guarded by mu: set by any failure, fails later prepares

  static std::string items(std::span<const int> batch) {
    std::string s;
    for (int x : batch) s += (s.empty() ? "" : ",") + std::to_string(x);
    return s;
  }
  Status prepare(std::span<const int> batch) {
    std::lock_guard lock(mu);
    log.push_back("prepare " + items(batch));
    return invalid ? Status::Error(EIO, "invalid") : Status::Ok();
  }
  Status publish(std::span<const int> batch) {
    std::lock_guard lock(mu);
    log.push_back("publish " + items(batch));
    if (batch.front() == fail_publish) {
      invalid = true;
      return Status::Error(EIO, "publish failed");
    }
    return Status::Ok();
  }
  Status flush() {
    int n = 0;
    {
      std::lock_guard lock(mu);
      n = ++flushes;
      log.push_back("flush");
    }
    gate.pass(n);
    std::lock_guard lock(mu);
    if (n == fail_flush) {
      invalid = true;
      return Status::Error(EIO, "flush failed");
    }
    return Status::Ok();
  }
};

// Until `queue` holds `n` waiting callers.
void wait_waiting(PipelinedCommit<int>& queue, size_t n) {
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (queue.waiting() < n) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(1ms);
  }
}

// Caller 1 leads a fresh batch and stops in its data flush; callers 2 and
// 3 queue meanwhile; then the flush is let go.
struct TwoBatches {
  PipelinedCommit<int> queue;
  ScriptedStages stages;
  Status first, second, third;

  void run() {
    stages.gate.hold(1);
    const int one = 1, two = 2, three = 3;
    std::thread a([&] { first = queue.commit(std::span(&one, 1), stages); });
    stages.gate.wait_held();
    std::thread b([&] { second = queue.commit(std::span(&two, 1), stages); });
    wait_waiting(queue, 1);
    std::thread c([&] { third = queue.commit(std::span(&three, 1), stages); });
    wait_waiting(queue, 2);
    stages.gate.open();
    a.join();
    b.join();
    c.join();
  }
};

}  // namespace

TEST_CASE("PipelinedCommit: one flush publishes batch k and makes batch k+1's data durable") {
  TwoBatches t;
  t.run();
  CHECK(t.first.ok());
  CHECK(t.second.ok());
  CHECK(t.third.ok());
  // Batch {2,3} is prepared after batch {1} is published and before the
  // flush that acknowledges {1}; it is published after that flush, and
  // acknowledged after one more: three flushes for two batches, not four.
  const std::vector<std::string> want = {"prepare 1", "flush",       "publish 1", "prepare 2,3",
                                         "flush",     "publish 2,3", "flush"};
  CHECK(t.stages.log == want);
}

TEST_CASE("PipelinedCommit: a failed shared flush fails the callers of both batches") {
  TwoBatches t;
  t.stages.fail_flush = 2;  // publishes {1}, makes {2,3}'s data durable
  t.run();
  CHECK(t.first.errnum() == EIO);
  CHECK(t.second.errnum() == EIO);
  CHECK(t.third.errnum() == EIO);
  const std::vector<std::string> want = {"prepare 1", "flush", "publish 1", "prepare 2,3", "flush"};
  CHECK(t.stages.log == want);  // {2,3} is never published
}

TEST_CASE("PipelinedCommit: a failed publish fails its batch and the queued callers, none published later") {
  TwoBatches t;
  t.stages.fail_publish = 1;
  t.run();
  CHECK(t.first.errnum() == EIO);
  CHECK(t.second.errnum() == EIO);
  CHECK(t.third.errnum() == EIO);
  for (const std::string& e : t.stages.log) CHECK(e != "publish 2,3");
}

TEST_CASE("PipelinedCommit: every item once, in each caller's order; publish follows a flush after prepare") {
  PipelinedCommit<int> queue;
  struct Checking {
    std::mutex mu;
    std::vector<std::vector<int>> published;  // guarded by mu
    std::set<int> prepared_unflushed, flushed_unpublished;
    std::atomic<int> in_stage{0};
    std::atomic<bool> overlapped{false}, out_of_order{false};
    int flushes = 0, publishes = 0;
    void enter() {
      if (in_stage.fetch_add(1) != 0) overlapped = true;
    }
    void leave() { in_stage.fetch_sub(1); }
    Status prepare(std::span<const int> batch) {
      enter();
      {
        std::lock_guard lock(mu);
        prepared_unflushed.insert(batch.front());
      }
      leave();
      return Status::Ok();
    }
    Status flush() {
      enter();
      std::this_thread::sleep_for(50us);
      {
        std::lock_guard lock(mu);
        ++flushes;
        flushed_unpublished.insert(prepared_unflushed.begin(), prepared_unflushed.end());
        prepared_unflushed.clear();
      }
      leave();
      return Status::Ok();
    }
    Status publish(std::span<const int> batch) {
      enter();
      {
        std::lock_guard lock(mu);
        ++publishes;
        if (flushed_unpublished.erase(batch.front()) != 1) out_of_order = true;
        published.emplace_back(batch.begin(), batch.end());
      }
      leave();
      return Status::Ok();
    }
  } stages;
  constexpr int kThreads = 8, kPerThread = 300;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const int item = t * kPerThread + i;
        if (!queue.commit(std::span(&item, 1), stages).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(failures == 0);
  CHECK_FALSE(stages.overlapped);
  CHECK_FALSE(stages.out_of_order);
  std::vector<int> last(kThreads, -1);
  size_t seen = 0;
  bool ordered = true;
  for (const auto& b : stages.published) {
    for (int x : b) {
      int& prev = last[static_cast<size_t>(x / kPerThread)];
      ordered = ordered && prev < x;
      prev = x;
      ++seen;
    }
  }
  CHECK(ordered);
  CHECK(seen == size_t{kThreads * kPerThread});
  INFO("flushes " << stages.flushes << ", batches " << stages.publishes);
  CHECK(stages.flushes < 2 * stages.publishes);  // flushes were shared between batches
}

namespace {

// A COW device whose flushes can be held at the gate or made to fail, and
// whose writes can be made to fail from a given one on.
class HeldFlushDevice final : public DeviceWrapper {
 public:
  using DeviceWrapper::DeviceWrapper;
  Gate gate;
  std::atomic<int> fail_flush{0};        // 1-based number of the flush to fail
  std::atomic<int> fail_writes_from{0};  // 1-based number of the first write to fail
  std::atomic<int> flushes{0}, writes{0};

  Status write(uint64_t offset, std::span<const uint8_t> buf) override {
    const int n = ++writes;
    if (fail_writes_from != 0 && n >= fail_writes_from) return Status::Error(EIO, "write failed");
    return DeviceWrapper::write(offset, buf);
  }
  Status write_zeroes(uint64_t offset, uint64_t length) override {
    const int n = ++writes;
    if (fail_writes_from != 0 && n >= fail_writes_from) return Status::Error(EIO, "write failed");
    return DeviceWrapper::write_zeroes(offset, length);
  }
  Status flush() override {
    const int n = ++flushes;
    gate.pass(n);
    if (n == fail_flush) return Status::Error(EIO, "flush failed");
    return DeviceWrapper::flush();
  }
};

struct StoreRun {
  std::shared_ptr<MemoryDevice> mem = std::make_shared<MemoryDevice>(3000 * kChunkBytes, "cow-p");
  std::shared_ptr<HeldFlushDevice> dev = std::make_shared<HeldFlushDevice>(mem);
  std::unique_ptr<ExceptionStore> store;
  StoreRun() {
    store = std::move(create_persistent_store(dev, kChunkSectors)).value();
    dev->flushes = 0;
    dev->writes = 0;
  }

  // Writes the data of `count` new exceptions and commits them as one call.
  Status commit(uint64_t first_old, size_t count, std::atomic<bool>* written = nullptr) {
    std::vector<NewException> batch;
    for (size_t i = 0; i < count; ++i) {
      auto cow = store->prepare_exception();
      if (!cow.ok()) return cow.status();
      REQUIRE(mem->write(cow->value * kChunkBytes, data_pattern(first_old + i)).ok());
      batch.push_back({ChunkIndex{first_old + i}, *cow});
    }
    if (written != nullptr) *written = true;
    return store->commit_exceptions(batch);
  }

  // Caller A (`a_count` exceptions) stops in its first flush; B (`b_count`)
  // commits meanwhile; then A's flush is let go.
  std::pair<Status, Status> two_batches(size_t a_count, size_t b_count) {
    dev->gate.hold(1);
    Status a, b;
    std::thread ta([&] { a = commit(1000, a_count); });
    dev->gate.wait_held();
    std::atomic<bool> b_written{false};
    std::thread tb([&] { b = commit(5000, b_count, &b_written); });
    // B queues behind A, whose first flush is held.
    while (!b_written || store->queued_commits() == 0) std::this_thread::sleep_for(1ms);
    dev->gate.open();
    ta.join();
    tb.join();
    return {a, b};
  }
};

}  // namespace

TEST_CASE("persistent store: two batches in flight take three flushes, and both survive a reopen") {
  StoreRun r;
  auto [a, b] = r.two_batches(3, 4);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(r.dev->flushes == 3);
  Opened opened = open_store(r.mem);
  REQUIRE(opened.status.ok());
  CHECK(opened.seen.size() == 7);
  for (const auto& [o, c] : opened.seen) CHECK(read_chunk(*r.mem, c) == data_pattern(o));
}

TEST_CASE("persistent store: a failed shared flush fails both batches and invalidates the store") {
  StoreRun r;
  r.dev->fail_flush = 2;
  auto [a, b] = r.two_batches(3, 4);
  CHECK(a.errnum() == EIO);
  CHECK(b.errnum() == EIO);
  CHECK_THAT(a.message(), Catch::Contains("cow-p"));
  CHECK_FALSE(r.store->valid());
  CHECK(r.store->prepare_exception().status().errnum() == EIO);
}

TEST_CASE("persistent store: a failed publish fails both batches and invalidates the store") {
  StoreRun r;
  r.dev->fail_writes_from = 1;  // A's metadata sector (data go around the wrapper)
  auto [a, b] = r.two_batches(3, 4);
  CHECK(a.errnum() == EIO);
  CHECK(b.errnum() == EIO);
  CHECK_FALSE(r.store->valid());
  Opened opened = open_store(r.mem);
  REQUIRE(opened.status.ok());
  CHECK(opened.seen.empty());
}

TEST_CASE("persistent store: a failed write while preparing the next batch fails both batches") {
  StoreRun r;
  // A leaves one free entry in area 0, so B goes on into area 1, which it
  // writes while A's metadata sector is in flight: write 1 is A's sector,
  // write 2 is B's area 1.
  r.dev->fail_writes_from = 2;
  auto [a, b] = r.two_batches(kPerArea - 1, 3);
  CHECK(a.errnum() == EIO);
  CHECK(b.errnum() == EIO);
  CHECK_FALSE(r.store->valid());
  Opened opened = open_store(r.mem);
  REQUIRE(opened.status.ok());
  for (const auto& [o, c] : opened.seen) CHECK(read_chunk(*r.mem, c) == data_pattern(o));
}
