// exception_table_bench: memory and speed of ExceptionTable, and the time
// to open a persistent store of many exceptions into one.
//
//   exception_table_bench [--json] [--count N] [--dir DIR]
//
// Memory is reported twice: memory_bytes() (the table's own estimate) and
// the heap growth glibc's mallinfo2() measured while the table was built.
#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <numeric>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cowsnap/io/devices.h"
#include "cowsnap/store/exception_store.h"
#include "cowsnap/store/exception_table.h"
#include "guarded_main.h"

namespace {

using cowsnap::ChunkIndex;
using cowsnap::ExceptionTable;
using Clock = std::chrono::steady_clock;

double cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Wall and CPU time: on a shared machine the CPU time is the steadier one.
struct Timer {
  Clock::time_point wall_start = Clock::now();
  double cpu_start = cpu_seconds();
  [[nodiscard]] double wall() const {
    return std::chrono::duration<double>(Clock::now() - wall_start).count();
  }
  [[nodiscard]] double cpu() const { return cpu_seconds() - cpu_start; }
};

size_t heap_in_use() { return mallinfo2().uordblks; }

[[noreturn]] void die(const std::string& what) {
  (void)std::fprintf(stderr, "exception_table_bench: %s\n", what.c_str());
  std::exit(1);  // NOLINT(concurrency-mt-unsafe): the bench runs one thread
}

// Origin chunks of one workload, in insertion order; cow chunks are handed
// out in order (2, 3, ...), as a store allocates them.
std::vector<uint64_t> workload(std::string_view name, uint64_t count) {
  std::vector<uint64_t> olds(count);
  if (name == "sequential") {
    std::iota(olds.begin(), olds.end(), 0);
  } else if (name == "random-dense") {  // every chunk of a range, shuffled
    std::iota(olds.begin(), olds.end(), 0);
    std::shuffle(olds.begin(), olds.end(), std::mt19937_64(42));
  } else {  // random-sparse: scattered over a 16 TiB origin of 4 KiB chunks
    for (uint64_t i = 0; i < count; ++i) olds[i] = (i * 0x9E3779B1ULL) & 0xffffffffULL;
  }
  return olds;
}

nlohmann::json bench_table(std::string_view name, uint64_t count) {
  const std::vector<uint64_t> olds = workload(name, count);
  std::vector<uint64_t> probes = olds;
  std::shuffle(probes.begin(), probes.end(), std::mt19937_64(7));

  const size_t heap_before = heap_in_use();
  ExceptionTable table;
  const Timer insert_timer;
  for (uint64_t i = 0; i < count; ++i) table.insert(ChunkIndex{olds[i]}, ChunkIndex{2 + i});
  const double insert_s = insert_timer.cpu();
  const size_t heap_after = heap_in_use();
  if (table.size() != count)
    die(fmt::format("{}: table holds {} of {} exceptions", name, table.size(), count));

  uint64_t checksum = 0;
  const Timer hit_timer;
  for (uint64_t old_chunk : probes) checksum += table.lookup(ChunkIndex{old_chunk})->value;
  const double hit_s = hit_timer.cpu();
  // Random keys over the sparse workload's range: nearly all misses, and
  // for random-sparse they search the same leaves as hits do.
  std::vector<uint64_t> misses(count);
  std::mt19937_64 rng(11);
  for (uint64_t& m : misses) m = rng() & 0xffffffffULL;
  const Timer miss_timer;
  for (uint64_t old_chunk : misses) checksum += table.lookup(ChunkIndex{old_chunk}).has_value();
  const double miss_s = miss_timer.cpu();
  if (checksum == 0) die("lookups found nothing");

  std::vector<std::pair<ChunkIndex, ChunkIndex>> batch;
  batch.reserve(count);
  for (uint64_t i = 0; i < count; ++i) batch.emplace_back(ChunkIndex{olds[i]}, ChunkIndex{2 + i});
  ExceptionTable batched;
  const Timer batch_timer;
  batched.insert_batch(std::move(batch));
  const double batch_s = batch_timer.cpu();

  const double n = static_cast<double>(count);
  return {{"workload", name},
          {"exceptions", count},
          {"bytes_per_exception", static_cast<double>(table.memory_bytes()) / n},
          {"heap_bytes_per_exception", static_cast<double>(heap_after - heap_before) / n},
          {"insert_cpu_ns", insert_s * 1e9 / n},
          {"insert_batch_cpu_ns", batch_s * 1e9 / n},
          {"batch_bytes_per_exception", static_cast<double>(batched.memory_bytes()) / n},
          {"lookup_hit_cpu_ns", hit_s * 1e9 / n},
          {"lookup_miss_cpu_ns", miss_s * 1e9 / n}};
}

// A COW device big enough for `count` 4 KiB data chunks and their areas.
uint64_t store_bytes(uint64_t count) { return (count + count / 256 + 16) * 4096; }

template <typename T>
T must(cowsnap::Result<T> r, std::string_view what) {
  if (!r.ok()) die(fmt::format("{}: {}", what, r.status().to_string()));
  return std::move(r).value();
}

void must(const cowsnap::Status& s, std::string_view what) {
  if (!s.ok()) die(fmt::format("{}: {}", what, s.to_string()));
}

// Opens the store on `dev` into a fresh table, inserting from the visitor
// one at a time or collecting them for insert_batch.
nlohmann::json time_open(const std::shared_ptr<cowsnap::BlockDevice>& dev, uint64_t expected, bool batched) {
  ExceptionTable table;
  std::vector<std::pair<ChunkIndex, ChunkIndex>> collected;
  const Timer timer;
  auto store = must(cowsnap::open_persistent_store(dev, 8,
                                                   [&](ChunkIndex o, ChunkIndex c) {
                                                     if (batched) {
                                                       collected.emplace_back(o, c);
                                                     } else {
                                                       table.insert(o, c);
                                                     }
                                                   }),
                    "open");
  if (batched) table.insert_batch(std::move(collected));
  nlohmann::json times = {{"wall_s", timer.wall()}, {"cpu_s", timer.cpu()}};
  if (table.size() != expected) die(fmt::format("open found {} of {} exceptions", table.size(), expected));
  return times;
}

nlohmann::json bench_open(uint64_t count, const std::string& dir) {
  const uint64_t size = store_bytes(count);
  auto mem = std::make_shared<cowsnap::MemoryDevice>(size, "bench-cow");
  auto store = must(cowsnap::create_persistent_store(mem, 8), "create");
  const std::vector<uint64_t> olds = workload("random-sparse", count);
  const Timer commit_timer;
  for (uint64_t old_chunk : olds) {
    const ChunkIndex cow = must(store->prepare_exception(), "prepare");
    const cowsnap::NewException one{ChunkIndex{old_chunk}, cow};
    must(store->commit_exceptions(std::span(&one, 1)), "commit");
  }
  const double commit_s = commit_timer.cpu();
  const uint64_t areas = count / 256 + 1;
  store.reset();

  const nlohmann::json memory_open = time_open(mem, count, false);
  const nlohmann::json memory_open_batched = time_open(mem, count, true);

  // The same metadata (header and every area) in a sparse file.
  const std::string path = dir + "/cowsnap-exception-table-bench.img";
  ::unlink(path.c_str());
  auto file = must(cowsnap::FileDevice::open(path, {.read_only = false, .create_size_bytes = size}), "file");
  std::vector<uint8_t> chunk(4096);
  for (uint64_t i = 0; i <= areas; ++i) {
    const uint64_t at = i == 0 ? 0 : (1 + (i - 1) * 257) * 4096;
    must(mem->read(at, chunk), "read area");
    must(file->write(at, chunk), "write area");
  }
  must(file->flush(), "flush");
  const nlohmann::json file_warm = time_open(file, count, false);
  const nlohmann::json file_warm_batched = time_open(file, count, true);
  // Drop this file's pages from the page cache for a cold open.
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0 || ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) != 0) die("posix_fadvise");
  ::close(fd);
  const nlohmann::json file_cold_batched = time_open(file, count, true);
  file.reset();
  ::unlink(path.c_str());

  return {{"exceptions", count},
          {"chunk_bytes", 4096},
          {"metadata_areas", areas},
          {"commit_cpu_ns_memory_device", commit_s * 1e9 / static_cast<double>(count)},
          {"open_memory_device", memory_open},
          {"open_memory_device_batched", memory_open_batched},
          {"open_file_warm", file_warm},
          {"open_file_warm_batched", file_warm_batched},
          {"open_file_cold_batched", file_cold_batched}};
}

int run(int argc, char** argv) {
  bool json = false;
  uint64_t count = 1'000'000;
  std::string dir = "/tmp";
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--json") {
      json = true;
    } else if (arg == "--count" && i + 1 < argc) {
      count = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else {
      (void)std::fprintf(stderr, "usage: exception_table_bench [--json] [--count N] [--dir DIR]\n");
      return 2;
    }
  }
  if (count == 0) die("--count must be positive");

  nlohmann::json tables = nlohmann::json::array();
  for (const char* name : {"random-sparse", "random-dense", "sequential"})
    tables.push_back(bench_table(name, count));
  const nlohmann::json open = bench_open(count, dir);

  if (json) {
    (void)std::printf("%s\n", nlohmann::json{{"tables", tables}, {"open", open}}.dump(2).c_str());
    return 0;
  }
  fmt::print(
      "ExceptionTable, {} inserts (cow chunks in allocation order); times are CPU time;\n"
      "miss = random key below 2^32 (within random-sparse's range, beyond the others')\n",
      count);
  fmt::print("{:<14} {:>8} {:>10} {:>10} {:>10} {:>8} {:>8}\n", "workload", "B/exc", "heap B/exc",
             "insert ns", "batch ns", "hit ns", "miss ns");
  for (const auto& t : tables) {
    fmt::print("{:<14} {:>8.2f} {:>10.2f} {:>10.1f} {:>10.1f} {:>8.1f} {:>8.1f}\n",
               t["workload"].get<std::string>(), t["bytes_per_exception"].get<double>(),
               t["heap_bytes_per_exception"].get<double>(), t["insert_cpu_ns"].get<double>(),
               t["insert_batch_cpu_ns"].get<double>(), t["lookup_hit_cpu_ns"].get<double>(),
               t["lookup_miss_cpu_ns"].get<double>());
  }
  fmt::print(
      "\nPersistent store with {} random exceptions, 4 KiB chunks ({} metadata areas), opened into a "
      "table:\n",
      count, open["metadata_areas"].get<uint64_t>());
  fmt::print("  commit (MemoryDevice, one at a time): {:.0f} ns CPU/exception\n",
             open["commit_cpu_ns_memory_device"].get<double>());
  const auto row = [&](const char* what, const char* key) {
    fmt::print("  {:<40} {:>7.3f} s wall {:>7.3f} s CPU\n", what, open[key]["wall_s"].get<double>(),
               open[key]["cpu_s"].get<double>());
  };
  row("MemoryDevice, insert per exception", "open_memory_device");
  row("MemoryDevice, insert_batch", "open_memory_device_batched");
  row("FileDevice warm cache, insert per exc.", "open_file_warm");
  row("FileDevice warm cache, insert_batch", "open_file_warm_batched");
  row("FileDevice cold cache, insert_batch", "open_file_cold_batched");
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return cowsnap::bench::guarded_main(argc, argv, run); }
