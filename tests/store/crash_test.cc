// Power cuts at every point of a run of commits: what a reopen finds.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "cowsnap/io/devices.h"
#include "cowsnap/store/exception_store.h"
#include "store_test_util.h"

using namespace cowsnap;
using namespace cowsnap::testing;

namespace {

// A harsher power cut than FaultyDevice's: of the writes since the last
// flush, a random subset survives, as when a disk cache reorders writes.
// (The store never writes one range twice between flushes, so undoing
// writes independently is exact here.)
class ReorderingCrashDevice final : public DeviceWrapper {
 public:
  ReorderingCrashDevice(std::shared_ptr<BlockDevice> target, uint64_t cut_after, uint64_t seed)
      : DeviceWrapper(std::move(target)), cut_at_(cut_after), rng_(seed) {}

  Status write(uint64_t offset, std::span<const uint8_t> buf) override {
    std::lock_guard lock(mu_);
    COWSNAP_RETURN_IF_ERROR(before_mutation_locked(offset, buf.size()));
    return DeviceWrapper::write(offset, buf);
  }
  Status write_zeroes(uint64_t offset, uint64_t length) override {
    std::lock_guard lock(mu_);
    COWSNAP_RETURN_IF_ERROR(before_mutation_locked(offset, length));
    return DeviceWrapper::write_zeroes(offset, length);
  }
  // Survives any cut once it returned; nothing else becomes durable.
  Status write_gather_durable(uint64_t offset, std::span<const std::span<const uint8_t>> pieces) override {
    std::lock_guard lock(mu_);
    COWSNAP_RETURN_IF_ERROR(count_locked());
    if ((offset / kChunkBytes) % (kPerArea + 1) == 1) ++metadata_writes_;
    for (const std::span<const uint8_t> piece : pieces) {
      COWSNAP_RETURN_IF_ERROR(DeviceWrapper::write(offset, piece));
      offset += piece.size();
    }
    return Status::Ok();
  }
  // With a delay, a flush takes that long, and covers only the writes made
  // before it was called (writes made meanwhile stay undoable), so
  // committers pile up behind it as on a real disk.
  Status flush() override {
    uint64_t covered_below = 0;
    {
      std::lock_guard lock(mu_);
      COWSNAP_RETURN_IF_ERROR(count_locked());
      ++flushes_;
      covered_below = next_seq_;
    }
    if (flush_delay_.count() > 0) std::this_thread::sleep_for(flush_delay_);
    std::lock_guard lock(mu_);
    if (cut_) return Status::Error(EIO, "power cut");
    std::erase_if(undo_, [&](const Undo& u) { return u.seq < covered_below; });
    return DeviceWrapper::flush();
  }
  void set_flush_delay(std::chrono::microseconds delay) { flush_delay_ = delay; }
  uint64_t flushes() const {
    std::lock_guard lock(mu_);
    return flushes_;
  }
  // Writes that touched a metadata area chunk.
  uint64_t metadata_writes() const {
    std::lock_guard lock(mu_);
    return metadata_writes_;
  }
  bool is_cut() const {
    std::lock_guard lock(mu_);
    return cut_;
  }

 private:
  struct Undo {
    uint64_t seq;
    uint64_t offset;
    std::vector<uint8_t> old_bytes;
  };
  Status count_locked() {
    if (!cut_ && ops_++ == cut_at_) {
      for (const Undo& u : undo_) {
        if (rng_() % 2 == 0) (void)DeviceWrapper::write(u.offset, u.old_bytes);
      }
      undo_.clear();
      cut_ = true;
    }
    return cut_ ? Status::Error(EIO, "power cut") : Status::Ok();
  }
  Status before_mutation_locked(uint64_t offset, uint64_t length) {
    COWSNAP_RETURN_IF_ERROR(count_locked());
    if ((offset / kChunkBytes) % (kPerArea + 1) == 1) ++metadata_writes_;
    Undo u{next_seq_++, offset, std::vector<uint8_t>(length)};
    COWSNAP_RETURN_IF_ERROR(DeviceWrapper::read(offset, u.old_bytes));
    undo_.push_back(std::move(u));
    return Status::Ok();
  }

  mutable std::mutex mu_;
  const uint64_t cut_at_;
  uint64_t ops_ = 0;                            // guarded by mu_
  bool cut_ = false;                            // guarded by mu_
  std::vector<Undo> undo_;                      // guarded by mu_; writes no flush covers yet
  std::mt19937_64 rng_;                         // guarded by mu_
  uint64_t next_seq_ = 0;                       // guarded by mu_
  uint64_t flushes_ = 0, metadata_writes_ = 0;  // guarded by mu_
  std::chrono::microseconds flush_delay_{0};    // set before use
};

constexpr uint64_t kDeviceChunks = 700;
constexpr uint64_t kCommits = 300;  // fills area 0 (256) and goes on into area 1

// How commit_run writes its data chunks: plainly (the commit flushes
// them), or durably (write_durable; the commit says so and need not flush).
enum class DataWrites { kPlain, kDurable };

// Prepare, write the data chunk, commit; the exception is acknowledged
// when commit returns OK. Stops at the first failure.
void commit_run(ExceptionStore& store, BlockDevice& dev, uint64_t first_old, uint64_t count,
                std::vector<Mapping>& acknowledged, std::mutex& mu, DataWrites writes = DataWrites::kPlain) {
  const bool durable = writes == DataWrites::kDurable;
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t old_chunk = first_old + i * 3;
    auto cow = store.prepare_exception();
    if (!cow.ok()) return;
    const uint64_t at = cow->value * kChunkBytes;
    const std::vector<uint8_t> data = data_pattern(old_chunk);
    if (!(durable ? dev.write_durable(at, data) : dev.write(at, data)).ok()) return;
    const NewException one{ChunkIndex{old_chunk}, *cow, durable};
    if (!store.commit_exceptions(std::span(&one, 1)).ok()) return;
    std::lock_guard lock(mu);
    acknowledged.emplace_back(old_chunk, cow->value);
  }
}

// Every acknowledged exception is there, and every exception found points
// at the data written for it (so none points at garbage).
void check_after_crash(const std::shared_ptr<MemoryDevice>& mem, const std::vector<Mapping>& acknowledged) {
  Opened opened = open_store(mem);
  INFO(opened.status.to_string());
  REQUIRE(opened.status.ok());
  REQUIRE(opened.store->valid());
  const std::set<Mapping> seen(opened.seen.begin(), opened.seen.end());
  size_t missing = 0;
  for (const Mapping& m : acknowledged) missing += seen.count(m) == 0 ? 1u : 0u;
  CHECK(missing == 0);
  std::set<uint64_t> olds, cows;
  size_t garbage = 0;
  for (const auto& [o, c] : opened.seen) {
    olds.insert(o);
    cows.insert(c);
    if (read_chunk(*mem, c) != data_pattern(o)) ++garbage;
  }
  CHECK(garbage == 0);
  CHECK(olds.size() == opened.seen.size());
  CHECK(cows.size() == opened.seen.size());
  // The reopened store carries on: a new exception lands on a fresh chunk.
  auto cow = opened.store->prepare_exception();
  REQUIRE(cow.ok());
  CHECK(cows.count(cow->value) == 0);
  REQUIRE(commit_one(*opened.store, ChunkIndex{999999}, *cow).ok());
}

// Runs `run` (committers over a store on the crashing device) with slow
// flushes and a power cut after every third operation, keeping a random
// subset of the unflushed writes, until a run ends uncut; after each cut
// the store reopens with every acknowledged exception and no garbage.
template <typename Run>
void cut_every_third_operation(const char* device_name, Run&& run) {
  for (uint64_t n = 0;; n += 3) {
    INFO("power cut after " << n << " operations (seed " << n << ")");
    auto mem = std::make_shared<MemoryDevice>(kDeviceChunks * kChunkBytes, device_name);
    fill_device(*mem, 0xAA);
    REQUIRE(create_persistent_store(mem, kChunkSectors).ok());
    auto crashing = std::make_shared<ReorderingCrashDevice>(mem, n, n);
    crashing->set_flush_delay(std::chrono::microseconds(100));
    Opened opened = open_store(crashing);
    REQUIRE(opened.status.ok());
    std::vector<Mapping> acknowledged;
    run(crashing, *opened.store, acknowledged);
    opened.store.reset();
    check_after_crash(mem, acknowledged);
    if (!crashing->is_cut()) break;  // n is past the run's last operation
  }
}

}  // namespace

TEST_CASE("power cut after every operation of a run of commits") {
  // Operations of an uncut run, to know the range of cut points.
  uint64_t total_ops = 0;
  {
    auto mem = std::make_shared<MemoryDevice>(kDeviceChunks * kChunkBytes, "cow-crash");
    auto faulty = std::make_shared<FaultyDevice>(mem);
    auto store = std::move(create_persistent_store(faulty, kChunkSectors)).value();
    const uint64_t before = faulty->operations();
    std::vector<Mapping> acknowledged;
    std::mutex mu;
    commit_run(*store, *faulty, 7, kCommits, acknowledged, mu);
    REQUIRE(acknowledged.size() == kCommits);
    total_ops = faulty->operations() - before;
  }
  REQUIRE(total_ops > kCommits * 3);

  for (uint64_t n = 0; n <= total_ops; ++n) {
    INFO("power cut after " << n << " operations");
    auto mem = std::make_shared<MemoryDevice>(kDeviceChunks * kChunkBytes, "cow-crash");
    fill_device(*mem, 0xAA);  // a reader that walks past the table finds junk, not zeroes
    auto faulty = std::make_shared<FaultyDevice>(mem);
    auto store = std::move(create_persistent_store(faulty, kChunkSectors)).value();
    faulty->power_cut_after(n);
    std::vector<Mapping> acknowledged;
    std::mutex mu;
    commit_run(*store, *faulty, 7, kCommits, acknowledged, mu);
    CHECK((n == total_ops) == !faulty->is_cut());
    store.reset();
    check_after_crash(mem, acknowledged);
  }
}

TEST_CASE("power cuts during concurrent group commits") {
  for (uint64_t n = 0; n < 1200; n += 23) {
    INFO("power cut after " << n << " operations");
    auto mem = std::make_shared<MemoryDevice>(kDeviceChunks * kChunkBytes, "cow-crash-mt");
    fill_device(*mem, 0xAA);
    auto faulty = std::make_shared<FaultyDevice>(mem);
    auto store = std::move(create_persistent_store(faulty, kChunkSectors)).value();
    faulty->power_cut_after(n);
    std::vector<Mapping> acknowledged;
    std::mutex mu;
    std::vector<std::thread> threads;
    for (uint64_t t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] { commit_run(*store, *faulty, t * 100000, 100, acknowledged, mu); });
    }
    for (auto& th : threads) th.join();
    store.reset();
    check_after_crash(mem, acknowledged);
  }
}

TEST_CASE("power cuts that keep a random subset of unflushed writes") {
  for (uint64_t n = 0;; ++n) {
    INFO("power cut after " << n << " operations (seed " << n << ")");
    auto mem = std::make_shared<MemoryDevice>(kDeviceChunks * kChunkBytes, "cow-reorder");
    fill_device(*mem, 0xAA);
    REQUIRE(create_persistent_store(mem, kChunkSectors).ok());
    auto crashing = std::make_shared<ReorderingCrashDevice>(mem, n, n);
    Opened opened = open_store(crashing);
    REQUIRE(opened.status.ok());
    std::vector<Mapping> acknowledged;
    std::mutex mu;
    commit_run(*opened.store, *crashing, 7, kCommits, acknowledged, mu);
    opened.store.reset();
    check_after_crash(mem, acknowledged);
    if (!crashing->is_cut()) break;  // n is past the run's last operation
  }
}

// Several committers with slow flushes: batches meet in the pipeline, so a
// cut lands between one batch's metadata sector and the flush that also
// covers the next batch's data, with any subset of the unflushed writes of
// both surviving.
TEST_CASE("power cuts that keep a random subset of unflushed writes with two batches in flight") {
  constexpr uint64_t kThreads = 4, kPerThread = 70;  // 280 exceptions: into area 1
  auto run = [&](const std::shared_ptr<ReorderingCrashDevice>& crashing, ExceptionStore& store,
                 std::vector<Mapping>& acknowledged) {
    std::mutex mu;
    std::vector<std::thread> threads;
    for (uint64_t t = 0; t < kThreads; ++t) {
      threads.emplace_back(
          [&, t] { commit_run(store, *crashing, t * 100000 + 7, kPerThread, acknowledged, mu); });
    }
    for (auto& th : threads) th.join();
  };
  {
    // Uncut: the run does take the pipelined path (a flush per batch, not
    // two; every batch writes one metadata sector, a few write a new area).
    auto mem = std::make_shared<MemoryDevice>(kDeviceChunks * kChunkBytes, "cow-pipe");
    REQUIRE(create_persistent_store(mem, kChunkSectors).ok());
    auto crashing = std::make_shared<ReorderingCrashDevice>(mem, ~uint64_t{0}, 1);
    crashing->set_flush_delay(std::chrono::microseconds(200));
    Opened opened = open_store(crashing);
    REQUIRE(opened.status.ok());
    std::vector<Mapping> acknowledged;
    run(crashing, *opened.store, acknowledged);
    REQUIRE(acknowledged.size() == kThreads * kPerThread);
    INFO("flushes " << crashing->flushes() << ", metadata writes " << crashing->metadata_writes());
    CHECK(crashing->flushes() * 4 < crashing->metadata_writes() * 7);
  }
  cut_every_third_operation("cow-pipe", run);
}

// Durably written data (the write-back committer's) lets a batch skip the
// flushes: its metadata is written durably instead. Mixed with plainly
// written commits in the same batches, the flushes still cover the plain
// ones, under the harshest cut (any subset of unflushed writes survives,
// durable writes always do).
TEST_CASE("power cuts with durably written data among the commits, two batches in flight") {
  constexpr uint64_t kThreads = 4, kPerThread = 70;
  auto run = [&](const std::shared_ptr<ReorderingCrashDevice>& crashing, ExceptionStore& store,
                 std::vector<Mapping>& acknowledged, uint64_t durable_threads) {
    std::mutex mu;
    std::vector<std::thread> threads;
    for (uint64_t t = 0; t < kThreads; ++t) {
      const DataWrites writes = t < durable_threads ? DataWrites::kDurable : DataWrites::kPlain;
      threads.emplace_back([&, t, writes] {
        commit_run(store, *crashing, t * 100000 + 7, kPerThread, acknowledged, mu, writes);
      });
    }
    for (auto& th : threads) th.join();
  };
  {
    // Every commit durable: no flush at all, every batch still acknowledged.
    auto mem = std::make_shared<MemoryDevice>(kDeviceChunks * kChunkBytes, "cow-durable");
    REQUIRE(create_persistent_store(mem, kChunkSectors).ok());
    auto crashing = std::make_shared<ReorderingCrashDevice>(mem, ~uint64_t{0}, 1);
    Opened opened = open_store(crashing);
    REQUIRE(opened.status.ok());
    std::vector<Mapping> acknowledged;
    run(crashing, *opened.store, acknowledged, kThreads);
    REQUIRE(acknowledged.size() == kThreads * kPerThread);
    CHECK(crashing->flushes() == 0);
    CHECK(crashing->metadata_writes() > 0);
    opened.store.reset();
    check_after_crash(mem, acknowledged);
  }
  for (const uint64_t durable_threads : {kThreads, uint64_t{2}}) {
    INFO(durable_threads << " durable committers");
    cut_every_third_operation("cow-durable", [&](const std::shared_ptr<ReorderingCrashDevice>& crashing,
                                                 ExceptionStore& store, std::vector<Mapping>& acknowledged) {
      run(crashing, store, acknowledged, durable_threads);
    });
  }
}
