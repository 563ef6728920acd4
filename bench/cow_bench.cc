// cow_bench: write amplification, throughput and latency of the copy-on-write
// engine, driven in-process (no NBD) through CountingDevices.
//
//   cow_bench [--quick] [--memory] [--dir DIR] [--size BYTES]
//             [--copied-span BYTES] [--snapshots 0,1,2,4,8]
//             [--chunks 4K,16K,64K,512K] [--workloads seq1m,rand4k-first,rand4k-copied]
//             [--concurrency 1,8,32] [--seconds S] [--max-ops N] [--seed N]
//             [--json FILE] [--quiet] [--writeback [--writeback-memory BYTES]]
//
// Each case builds an Origin over the origin file (or MemoryDevice) and
// attaches N snapshots, each with a fresh persistent ("P") store on its own
// COW file, then runs one workload from T threads against the
// snapshot-origin target:
//   seq1m          1 MiB writes, one shared sequential cursor from offset 0
//                  (every chunk written is a first write);
//   rand4k-first   one 4 KiB write (at a random 4 KiB offset inside the
//                  chunk) to each chunk of a random permutation: every write
//                  is the first write of its chunk, so every write copies;
//   rand4k-copied  uniform random 4 KiB writes over --copied-span after
//                  every chunk of that span was copied into every snapshot
//                  (the copy is setup, done with flushes suppressed, not
//                  measured); the three concurrency levels share one setup.
//                  Each such case with snapshots is preceded by a
//                  0-snapshot reference run over the same span, recorded in
//                  the case as ref0_throughput_mib_s: the ratio that matters
//                  here is close to 1 and must not depend on case order.
// A case stops after --max-ops operations, after --seconds, or when its
// workload runs out of first writes, whichever comes first.
//
// Every backing device is wrapped: CountingDevice (the engine's counter,
// totals) over a bench-local classifier that splits COW writes into data
// chunks and metadata (header and metadata-area chunks, by offset, using the
// kernel layout: chunk 0 is the header, area i sits at chunk
// 1 + i * (chunk/16 + 1)). Write amplification = every byte written to every
// backing device (write() bytes plus write_zeroes()/discard() bytes) divided
// by the bytes the client wrote.
//
// Output: one JSON object per case on stdout (JSON lines), a one-line human
// summary per case on stderr, and with --json FILE one JSON document
// {"machine", "config", "cases"}.
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cowsnap/dm/snapshot.h"
#include "cowsnap/io/devices.h"
#include "guarded_main.h"

namespace {

using Clock = std::chrono::steady_clock;
using cowsnap::BlockDevice;
using cowsnap::CountingDevice;
using cowsnap::DeviceWrapper;
using cowsnap::Status;

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;

[[noreturn]] void die(const std::string& what) {
  (void)std::fprintf(stderr, "cow_bench: %s\n", what.c_str());
  std::exit(1);  // NOLINT(concurrency-mt-unsafe): argument errors, before any thread starts
}

void check(const Status& s, std::string_view what) {
  if (!s.ok()) die(fmt::format("{}: {}", what, s.to_string()));
}

double process_cpu_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto secs = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) * 1e-6;
  };
  return secs(ru.ru_utime) + secs(ru.ru_stime);
}

// Suppresses flush() while `gated` is set: the unmeasured set-up of the
// rand4k-copied workload copies thousands of chunks and would otherwise
// spend minutes in fdatasync. The set-up ends with one real flush.
class FlushGate final : public DeviceWrapper {
 public:
  using DeviceWrapper::DeviceWrapper;
  Status flush() override {
    if (gated.load(std::memory_order_relaxed)) return Status::Ok();
    return DeviceWrapper::flush();
  }
  // Passed on: a durable write is no flush of the whole device.
  Status write_gather_durable(uint64_t offset, std::span<const std::span<const uint8_t>> pieces) override {
    return target()->write_gather_durable(offset, pieces);
  }
  std::atomic<bool> gated{false};
};

// Splits the writes reaching a COW device into data chunks and metadata
// (header chunk + metadata areas) by offset, with the persistent store's
// layout. Zeroing (write_zeroes/discard) is counted apart: the store zeroes
// the next metadata area when one fills.
class CowClassifier final : public DeviceWrapper {
 public:
  CowClassifier(std::shared_ptr<BlockDevice> target, uint64_t chunk_bytes)
      : DeviceWrapper(std::move(target)), chunk_bytes_(chunk_bytes), epa_(chunk_bytes / 16) {}

  Status write(uint64_t offset, std::span<const uint8_t> buf) override {
    COWSNAP_RETURN_IF_ERROR(DeviceWrapper::write(offset, buf));
    classify(offset, buf.size());
    return Status::Ok();
  }
  // Passed on as it is, so the device below does its own durable write.
  Status write_gather_durable(uint64_t offset, std::span<const std::span<const uint8_t>> pieces) override {
    COWSNAP_RETURN_IF_ERROR(target()->write_gather_durable(offset, pieces));
    classify(offset, cowsnap::gather_bytes(pieces));
    return Status::Ok();
  }
  Status write_zeroes(uint64_t offset, uint64_t length) override {
    COWSNAP_RETURN_IF_ERROR(DeviceWrapper::write_zeroes(offset, length));
    zeroed_.fetch_add(length, std::memory_order_relaxed);
    return Status::Ok();
  }
  Status discard(uint64_t offset, uint64_t length) override {
    COWSNAP_RETURN_IF_ERROR(DeviceWrapper::discard(offset, length));
    zeroed_.fetch_add(length, std::memory_order_relaxed);
    return Status::Ok();
  }
  [[nodiscard]] uint64_t data_bytes() const { return data_.load(); }
  [[nodiscard]] uint64_t metadata_bytes() const { return metadata_.load(); }
  [[nodiscard]] uint64_t zeroed_bytes() const { return zeroed_.load(); }
  void reset() {
    data_ = 0;
    metadata_ = 0;
    zeroed_ = 0;
  }

 private:
  [[nodiscard]] bool is_metadata(uint64_t chunk) const { return chunk == 0 || chunk % (epa_ + 1) == 1; }
  // Chunk by chunk: a write never straddles data and metadata in practice,
  // but count it exactly if it does.
  void classify(uint64_t offset, uint64_t length) {
    for (uint64_t pos = offset, end = offset + length; pos < end;) {
      const uint64_t chunk = pos / chunk_bytes_;
      const uint64_t n = std::min(end, (chunk + 1) * chunk_bytes_) - pos;
      (is_metadata(chunk) ? metadata_ : data_).fetch_add(n, std::memory_order_relaxed);
      pos += n;
    }
  }
  uint64_t chunk_bytes_;
  uint64_t epa_;
  std::atomic<uint64_t> data_{0}, metadata_{0}, zeroed_{0};
};

struct Options {
  bool quick = false;
  bool memory = false;
  bool quiet = false;
  std::string dir;
  uint64_t size = 256 * kMiB;        // origin size (seq1m and rand4k-first span)
  uint64_t copied_span = 32 * kMiB;  // rand4k-copied span (set up by copying every chunk)
  std::vector<uint64_t> snapshots{0, 1, 2, 4, 8};
  std::vector<uint64_t> chunks{4 * kKiB, 16 * kKiB, 64 * kKiB, 512 * kKiB};
  std::vector<std::string> workloads{"seq1m", "rand4k-first", "rand4k-copied"};
  std::vector<uint64_t> concurrency{1, 8, 32};
  double seconds = 1.0;        // per case
  uint64_t max_ops = 1000000;  // per case (the time budget usually ends a case first)
  uint64_t seed = 42;
  std::string json_path;
  // Write-back mode (cowsnap/dm/snapshot.h, invariants 8-12). A case then
  // ends with a flush, timed as part of it, so that its throughput and
  // write amplification count every copy-out the writes caused.
  bool write_back = false;
  uint64_t write_back_memory = cowsnap::WriteBackOptions{}.max_pending_bytes;
  // Back every device with a fresh RBD image in this pool ($CEPH_CONF's
  // cluster) instead of a file under --dir.
  std::string rbd_pool;
};

uint64_t parse_size(std::string_view s) {
  if (s.empty()) die("empty size");
  uint64_t mult = 1;
  switch (s.back()) {
    case 'k':
    case 'K':
      mult = kKiB;
      break;
    case 'm':
    case 'M':
      mult = kMiB;
      break;
    case 'g':
    case 'G':
      mult = 1024 * kMiB;
      break;
    default:
      break;
  }
  if (mult != 1) s.remove_suffix(1);
  char* end = nullptr;
  const std::string str(s);
  const unsigned long long v = std::strtoull(str.c_str(), &end, 10);
  if (end == str.c_str() || *end != '\0') die(fmt::format("bad size '{}'", str));
  return static_cast<uint64_t>(v) * mult;
}

std::vector<std::string> split(std::string_view s) {
  std::vector<std::string> out;
  while (!s.empty()) {
    const size_t comma = s.find(',');
    out.emplace_back(s.substr(0, comma));
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return out;
}

std::vector<uint64_t> split_sizes(std::string_view s) {
  std::vector<uint64_t> out;
  for (const auto& part : split(s)) out.push_back(parse_size(part));
  return out;
}

void usage() {
  (void)std::fprintf(
      stderr,
      "usage: cow_bench [--quick] [--memory] [--dir DIR] [--size BYTES] [--copied-span BYTES]\n"
      "                 [--snapshots LIST] [--chunks LIST] [--workloads LIST] [--concurrency LIST]\n"
      "                 [--seconds S] [--max-ops N] [--seed N] [--json FILE] [--quiet]\n"
      "                 [--writeback [--writeback-memory BYTES]] [--rbd POOL]\n"
      "  LIST is comma-separated; sizes take K/M/G suffixes.\n"
      "  workloads: seq1m, rand4k-first, rand4k-copied\n"
      "  --quick: 8M origin, snapshots 0,1, chunks 4K,64K, concurrency 1,8, 0.2 s/case\n"
      "  --writeback: origins in write-back mode (default 64M pending); each case ends with a\n"
      "               timed flush\n"
      "  --rbd POOL: every device a new RBD image in POOL of $CEPH_CONF's cluster\n");
}

Options parse_args(int argc, char** argv) {
  Options o;
  // --quick first so that explicit options override its defaults.
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--quick") {
      o.quick = true;
      o.size = 8 * kMiB;
      o.copied_span = 4 * kMiB;
      o.snapshots = {0, 1};
      o.chunks = {4 * kKiB, 64 * kKiB};
      o.concurrency = {1, 8};
      o.seconds = 0.2;
      o.max_ops = 20000;
    }
  }
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&]() -> std::string_view {
      if (i + 1 >= argc) die(fmt::format("{} needs a value", arg));
      return argv[++i];
    };
    if (arg == "--quick") {
    } else if (arg == "--memory") {
      o.memory = true;
    } else if (arg == "--quiet") {
      o.quiet = true;
    } else if (arg == "--rbd") {
      o.rbd_pool = value();
    } else if (arg == "--dir") {
      o.dir = value();
    } else if (arg == "--size") {
      o.size = parse_size(value());
    } else if (arg == "--copied-span") {
      o.copied_span = parse_size(value());
    } else if (arg == "--snapshots") {
      o.snapshots.clear();
      for (const auto& p : split(value())) o.snapshots.push_back(parse_size(p));
    } else if (arg == "--chunks") {
      o.chunks = split_sizes(value());
    } else if (arg == "--workloads") {
      o.workloads = split(value());
    } else if (arg == "--concurrency") {
      o.concurrency.clear();
      for (const auto& p : split(value())) o.concurrency.push_back(parse_size(p));
    } else if (arg == "--seconds") {
      o.seconds = std::strtod(std::string(value()).c_str(), nullptr);
    } else if (arg == "--max-ops") {
      o.max_ops = parse_size(value());
    } else if (arg == "--seed") {
      o.seed = parse_size(value());
    } else if (arg == "--json") {
      o.json_path = value();
    } else if (arg == "--writeback") {
      o.write_back = true;
    } else if (arg == "--writeback-memory") {
      o.write_back_memory = parse_size(value());
    } else if (arg == "-h" || arg == "--help") {
      usage();
      std::exit(0);  // NOLINT(concurrency-mt-unsafe): before any thread starts
    } else {
      usage();
      die(fmt::format("unknown argument '{}'", arg));
    }
  }
  for (uint64_t c : o.chunks) {
    if (!cowsnap::validate_chunk_sectors(c / cowsnap::kSectorBytes).ok() || c % cowsnap::kSectorBytes != 0) {
      die(fmt::format("bad chunk size {} (a power of two from 4K to 512K)", c));
    }
  }
  for (const auto& w : o.workloads) {
    if (w != "seq1m" && w != "rand4k-first" && w != "rand4k-copied")
      die(fmt::format("unknown workload '{}'", w));
  }
  for (uint64_t t : o.concurrency) {
    if (t == 0 || t > 1024) die("concurrency must be 1..1024");
  }
  if (o.size < 4 * kMiB || o.size % kMiB != 0) die("--size must be a multiple of 1M and at least 4M");
  if (o.copied_span > o.size || o.copied_span % (512 * kKiB) != 0)
    die("--copied-span must be <= --size, in 512K units");
  if (o.seconds <= 0) die("--seconds must be positive");
  return o;
}

// One backing device: the raw device, a flush gate, the classifier (COW
// only) and the engine's CountingDevice on top.
struct Backing {
  std::string path;  // empty for memory
  std::shared_ptr<FlushGate> gate;
  std::shared_ptr<CowClassifier> classifier;  // null for the origin
  std::shared_ptr<CountingDevice> counting;
};

std::shared_ptr<BlockDevice> raw_device(const Options& o, const std::string& path, uint64_t size,
                                        const std::string& name) {
  if (o.memory) return std::make_shared<cowsnap::MemoryDevice>(size, name);
  if (!o.rbd_pool.empty()) {
    // A new image each time, as a file is removed and made anew.
    static std::atomic<uint64_t> made{0};
    const std::string image =
        fmt::format("rbd:{}/cow-bench-{}-{}-{}", o.rbd_pool, ::getpid(), name, made.fetch_add(1));
    auto dev = cowsnap::open_device(image, {.create_size_bytes = size});
    check(dev.status(), "creating " + image);
    return *dev;
  }
  std::error_code ec;
  std::filesystem::remove(path, ec);
  auto dev = cowsnap::FileDevice::open(path, cowsnap::FileDevice::Options{.create_size_bytes = size});
  check(dev.status(), "creating " + path);
  return *dev;
}

Backing make_backing(const Options& o, const std::string& path, uint64_t size, uint64_t cow_chunk_bytes,
                     const std::string& name) {
  Backing b;
  b.path = o.memory ? std::string() : path;
  b.gate = std::make_shared<FlushGate>(raw_device(o, path, size, name));
  std::shared_ptr<BlockDevice> top = b.gate;
  if (cow_chunk_bytes != 0) {
    b.classifier = std::make_shared<CowClassifier>(top, cow_chunk_bytes);
    top = b.classifier;
  }
  b.counting = std::make_shared<CountingDevice>(top);
  return b;
}

// A COW device with room for every chunk of `span` bytes of origin: header,
// metadata areas, data, and a chunk of slack.
uint64_t cow_size_for(uint64_t span, uint64_t chunk) {
  const uint64_t data = span / chunk;
  const uint64_t epa = chunk / 16;
  const uint64_t areas = (data + epa - 1) / epa + 1;
  return (1 + areas + data + 2) * chunk;
}

struct Latencies {
  std::vector<uint32_t> ns_per_op;  // one per op, nanoseconds (saturating)
};

double percentile_us(const std::vector<uint32_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto idx = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  const size_t i = std::min(sorted.size() - 1, idx == 0 ? 0 : idx - 1);
  return static_cast<double>(sorted[i]) / 1000.0;
}

struct Setup {
  std::shared_ptr<cowsnap::Origin> origin;
  std::shared_ptr<cowsnap::SnapshotOriginTarget> target;
  std::vector<std::shared_ptr<cowsnap::SnapshotTarget>> snapshots;
  std::vector<Backing> cows;
};

class Bench {
 public:
  explicit Bench(Options o) : o_(std::move(o)) {}

  int run() {
    if (!o_.memory) {
      if (o_.dir.empty()) {
        std::string tmpl = "/var/tmp/cow_bench.XXXXXX";
        if (::mkdtemp(tmpl.data()) == nullptr) die("mkdtemp /var/tmp/cow_bench.XXXXXX failed");
        o_.dir = tmpl;
        remove_dir_ = true;
      } else {
        std::filesystem::create_directories(o_.dir);
      }
    }
    origin_ = make_backing(o_, o_.dir + "/origin.img", o_.size, 0, "origin");
    const nlohmann::json flush_latency = measure_flush_latency();
    fill_origin();

    nlohmann::json cases = nlohmann::json::array();
    for (uint64_t n : o_.snapshots) {
      // The chunk size means nothing without snapshots: run those once.
      const std::vector<uint64_t> chunks = n == 0 ? std::vector<uint64_t>{o_.chunks.front()} : o_.chunks;
      for (uint64_t chunk : chunks) {
        for (const auto& w : o_.workloads) {
          if (w == "rand4k-copied") {
            // One set-up (every chunk of the span copied) serves every
            // concurrency level: the workload does not change what is copied.
            Setup s = make_setup(n, chunk, o_.copied_span);
            copy_everything(s);
            Setup plain = make_setup(0, chunk, o_.copied_span);
            for (uint64_t t : o_.concurrency) {
              // Copied-chunk writes cost little more than plain ones, so
              // the ratio is easily swamped by whatever ran minutes before
              // the 0-snapshot case: measure a 0-snapshot reference (an
              // Origin with no snapshot over the same device and span)
              // right before each case, and record it in the case.
              nlohmann::json ref;
              if (n > 0) ref = run_case(plain, 0, chunk, w, t, /*reference=*/true);
              nlohmann::json c = run_case(s, n, chunk, w, t);
              if (n > 0) {
                c["ref0_throughput_mib_s"] = ref["throughput_mib_s"];
                c["ref0_lat_us"] = ref["lat_us"];
              }
              cases.push_back(std::move(c));
            }
            teardown(plain);
            teardown(s);
          } else {
            for (uint64_t t : o_.concurrency) {
              Setup s = make_setup(n, chunk, o_.size);
              cases.push_back(run_case(s, n, chunk, w, t));
              teardown(s);
            }
          }
        }
      }
    }

    if (!o_.json_path.empty()) {
      nlohmann::json doc = {{"bench", "cow_bench"},
                            {"machine", machine()},
                            {"config", config()},
                            {"cases", cases},
                            {"flush_latency", flush_latency}};
      std::ofstream out(o_.json_path);
      out << doc.dump(1) << "\n";
      if (!out) die("cannot write " + o_.json_path);
    }
    origin_ = Backing{};
    if (remove_dir_) std::filesystem::remove_all(o_.dir);
    return 0;
  }

 private:
  // What one flush costs on the backing store: a 4 KiB write at a random
  // offset, then a timed flush, 64 times; milliseconds, median and range.
  // Group commit shares one flush between writers: this is its price.
  nlohmann::json measure_flush_latency() {
    constexpr int kRounds = 64;
    std::vector<uint8_t> block(4 * kKiB, 0x5a);
    std::mt19937_64 rng(o_.seed);
    std::vector<double> ms;
    for (int i = 0; i < kRounds; ++i) {
      const uint64_t at = rng() % (o_.size / block.size()) * block.size();
      check(origin_.gate->target()->write(at, block), "writing before a timed flush");
      const auto t0 = Clock::now();
      check(origin_.gate->target()->flush(), "timed flush");
      ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    nlohmann::json out = {{"backing", backing_name()},
                          {"rounds", kRounds},
                          {"median_ms", ms[ms.size() / 2]},
                          {"min_ms", ms.front()},
                          {"max_ms", ms.back()}};
    if (!o_.quiet) {
      (void)std::fprintf(stderr, "flush latency (%s): median %.3f ms (%.3f-%.3f) over %d flushes\n",
                         backing_name().c_str(), ms[ms.size() / 2], ms.front(), ms.back(), kRounds);
    }
    return out;
  }
  std::string backing_name() const {
    if (o_.memory) return "memory";
    return o_.rbd_pool.empty() ? "file" : "rbd";
  }

  nlohmann::json machine() const {
    utsname u{};
    ::uname(&u);
    return {{"nproc", std::thread::hardware_concurrency()},
            {"kernel", u.release},
            {"memory_bytes", static_cast<uint64_t>(::sysconf(_SC_PHYS_PAGES)) *
                                 static_cast<uint64_t>(::sysconf(_SC_PAGESIZE))}};
  }

  nlohmann::json config() const {
    return {{"device", backing_name()},
            {"dir", o_.memory ? "" : o_.dir},
            {"origin_bytes", o_.size},
            {"copied_span_bytes", o_.copied_span},
            {"seconds_per_case", o_.seconds},
            {"max_ops_per_case", o_.max_ops},
            {"quick", o_.quick},
            {"seed", o_.seed},
            {"snapshots", o_.snapshots},
            {"chunks", o_.chunks},
            {"workloads", o_.workloads},
            {"concurrency", o_.concurrency},
            {"mode", mode()}};
  }

  [[nodiscard]] const char* mode() const { return o_.write_back ? "writeback" : "sync"; }

  // Non-zero content everywhere, so copy-outs read real data, then durable.
  void fill_origin() {
    std::vector<uint8_t> buf(kMiB);
    std::mt19937_64 rng(o_.seed);
    for (auto& b : buf) b = static_cast<uint8_t>(rng());
    for (uint64_t off = 0; off < o_.size; off += kMiB) {
      buf[0] = static_cast<uint8_t>(off >> 20);
      check(origin_.gate->write(off, buf), "filling the origin");
    }
    check(origin_.gate->flush(), "flushing the origin");
  }

  Setup make_setup(uint64_t n, uint64_t chunk, uint64_t span) {
    Setup s;
    s.origin =
        cowsnap::Origin::create(origin_.counting, "origin-real", {o_.write_back, o_.write_back_memory});
    s.target = std::make_shared<cowsnap::SnapshotOriginTarget>(s.origin);
    for (uint64_t i = 0; i < n; ++i) {
      const std::string name = fmt::format("cow{}", i);
      Backing b = make_backing(o_, o_.dir + "/" + name + ".img", cow_size_for(span, chunk), chunk, name);
      cowsnap::SnapshotSpec spec{.cow = b.counting,
                                 .cow_name = name,
                                 .store_type = 'P',
                                 .chunk_sectors = static_cast<uint32_t>(chunk / cowsnap::kSectorBytes),
                                 .create = true};
      auto snap = cowsnap::open_snapshot(s.origin, spec);
      check(snap.status(), "creating snapshot " + name);
      s.snapshots.push_back(*snap);
      s.cows.push_back(std::move(b));
    }
    return s;
  }

  void teardown(Setup& s) {
    for (const auto& snap : s.snapshots) s.origin->detach_snapshot(snap);
    s.snapshots.clear();
    for (const auto& b : s.cows) {
      if (!b.path.empty()) std::filesystem::remove(b.path);
    }
    s.cows.clear();
    s.target.reset();
    s.origin.reset();
  }

  // The rand4k-copied set-up: whole-span 1 MiB origin writes (flushes
  // suppressed) so that every snapshot holds every chunk, then one real
  // flush of every device.
  void copy_everything(Setup& s) {
    std::vector<Backing*> all{&origin_};
    for (auto& b : s.cows) all.push_back(&b);
    for (auto* b : all) b->gate->gated = true;
    const uint64_t threads = 8;
    std::atomic<uint64_t> next{0};
    std::vector<std::thread> pool;
    for (uint64_t t = 0; t < threads; ++t) {
      pool.emplace_back([&] {
        std::vector<uint8_t> buf(kMiB, 0x5a);
        for (uint64_t off = next.fetch_add(kMiB); off < o_.copied_span; off = next.fetch_add(kMiB)) {
          check(s.target->write(off, buf), "copying the span");
        }
      });
    }
    for (auto& th : pool) th.join();
    // Write-back: the copy-outs commit now, still with flushes suppressed.
    if (o_.write_back) check(s.target->flush(), "committing the set-up's copy-outs");
    for (auto* b : all) {
      b->gate->gated = false;
      check(b->gate->flush(), "flushing after set-up");
    }
    for (const auto& snap : s.snapshots) {
      const uint64_t chunks = o_.copied_span / snap->geometry().chunk_bytes();
      if (snap->exception_count() != chunks || !snap->valid()) {
        die(fmt::format("set-up copied {} of {} chunks (valid={})", snap->exception_count(), chunks,
                        snap->valid()));
      }
    }
  }

  struct Op {
    uint64_t offset;
    uint64_t length;
  };

  // The operation list of a case (at most max_ops).
  std::vector<Op> plan(const std::string& w, uint64_t chunk, uint64_t n, std::mt19937_64& rng) const {
    std::vector<Op> ops;
    if (w == "seq1m") {
      for (uint64_t off = 0; off < o_.size && ops.size() < o_.max_ops; off += kMiB)
        ops.push_back({off, kMiB});
    } else if (w == "rand4k-first") {
      // Without snapshots, "first" has no meaning: same offsets, no copies.
      const uint64_t c = n == 0 ? 4 * kKiB : chunk;
      std::vector<uint64_t> order(o_.size / c);
      std::iota(order.begin(), order.end(), uint64_t{0});
      std::shuffle(order.begin(), order.end(), rng);
      const uint64_t per_chunk = c / (4 * kKiB);
      for (uint64_t idx : order) {
        if (ops.size() >= o_.max_ops) break;
        ops.push_back({idx * c + (rng() % per_chunk) * 4 * kKiB, 4 * kKiB});
      }
    } else {
      const uint64_t blocks = o_.copied_span / (4 * kKiB);
      for (uint64_t i = 0; i < o_.max_ops; ++i) ops.push_back({(rng() % blocks) * 4 * kKiB, 4 * kKiB});
    }
    return ops;
  }

  // What the writer threads of one case measured.
  struct Drive {
    std::vector<uint32_t> sorted_ns;  // every op's latency, ascending
    uint64_t client_bytes = 0;
    double elapsed_s = 0;
    double cpu_s = 0;
    double flush_s = 0;  // write-back: the final flush, included in elapsed_s
  };

  // `reference`: a 0-snapshot reference run for the case that follows; not
  // printed as a case of its own.
  nlohmann::json run_case(Setup& s, uint64_t n, uint64_t chunk, const std::string& w, uint64_t threads,
                          bool reference = false) {
    std::mt19937_64 rng(o_.seed ^ (n * 1000003 + chunk * 31 + threads));
    const std::vector<Op> ops = plan(w, chunk, n, rng);
    const std::vector<uint64_t> exceptions_before = start_counting(s);
    Drive d = drive(s, ops, threads, [&](const std::string& error) {
      die(fmt::format("{} snapshots={} chunk={} threads={}: write failed: {}", w, n, chunk, threads, error));
    });
    if (o_.write_back) {
      // What the writers left pending is part of the case.
      const Clock::time_point a = Clock::now();
      check(s.target->flush(), "flushing the origin after a case");
      d.flush_s = std::chrono::duration<double>(Clock::now() - a).count();
      d.elapsed_s += d.flush_s;
    }
    for (const auto& snap : s.snapshots) {
      if (!snap->valid()) die(fmt::format("{}: a snapshot became invalid (COW store too small?)", w));
    }
    nlohmann::json j = case_json(s, n, chunk, w, threads, d, exceptions_before);
    if (!reference) print_case(j, d);
    return j;
  }

  // Flushes every device and zeroes every counter, so that neither the
  // previous case's dirty backlog (written back during this one, it would
  // bias the order of cases) nor the set-up (store creation, the copied
  // span) is part of the case. Returns each snapshot's exception count.
  std::vector<uint64_t> start_counting(Setup& s) {
    // Write-back: what the set-up left pending is not this case's work.
    if (o_.write_back) check(s.target->flush(), "flushing the origin's pending copy-outs before a case");
    check(origin_.gate->flush(), "flushing the origin before a case");
    for (auto& b : s.cows) check(b.gate->flush(), "flushing a COW device before a case");
    origin_.counting->reset();
    for (auto& b : s.cows) {
      b.counting->reset();
      b.classifier->reset();
    }
    std::vector<uint64_t> exceptions;
    for (const auto& snap : s.snapshots) exceptions.push_back(snap->exception_count());
    return exceptions;
  }

  // Runs `ops` on `threads` writer threads until they are done or the time
  // budget is spent. `fail` is called (and must not return) with the first
  // write error.
  Drive drive(Setup& s, const std::vector<Op>& ops, uint64_t threads,
              const std::function<void(const std::string&)>& fail) {
    std::atomic<uint64_t> next{0};
    std::atomic<bool> failed{false};
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> running{threads};
    std::vector<Latencies> lat(threads);
    std::vector<uint64_t> done_bytes(threads, 0);
    std::vector<Clock::time_point> started(threads), ended(threads);
    std::barrier start(static_cast<std::ptrdiff_t>(threads + 1));
    std::vector<std::thread> pool;
    std::string error;
    std::mutex error_mu;
    for (uint64_t t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        std::vector<uint8_t> buf(kMiB);
        std::mt19937_64 fill(o_.seed + t);
        for (auto& b : buf) b = static_cast<uint8_t>(fill());
        lat[t].ns_per_op.reserve(std::min<size_t>(ops.size() / threads + 16, 1 << 20));
        start.arrive_and_wait();
        started[t] = Clock::now();
        // Every thread does at least one operation, even when the machine
        // is so busy that it is scheduled only after the time budget.
        for (bool first = true; !failed.load(std::memory_order_relaxed); first = false) {
          if (!first && stop.load(std::memory_order_relaxed)) break;
          const uint64_t i = next.fetch_add(1);
          if (i >= ops.size()) break;
          const Op& op = ops[i];
          const Clock::time_point a = Clock::now();
          Status st = s.target->write(op.offset, std::span<const uint8_t>(buf).first(op.length));
          const Clock::time_point b = Clock::now();
          if (!st.ok()) {
            std::lock_guard lock(error_mu);
            error = st.to_string();
            failed = true;
            break;
          }
          const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count();
          lat[t].ns_per_op.push_back(static_cast<uint32_t>(std::min<int64_t>(ns, UINT32_MAX)));
          done_bytes[t] += op.length;
        }
        ended[t] = Clock::now();
        running.fetch_sub(1);
      });
    }
    const double cpu0 = process_cpu_seconds();
    start.arrive_and_wait();
    // The budget runs from once every thread is ready. (Elapsed time is
    // measured by the threads themselves: on a busy machine they may all be
    // done before this thread runs again.)
    const Clock::time_point t0 = Clock::now();
    const auto budget =
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o_.seconds));
    while (running.load() != 0) {
      if (Clock::now() - t0 >= budget) stop = true;
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    for (auto& th : pool) th.join();
    Drive d;
    d.elapsed_s = std::chrono::duration<double>(*std::max_element(ended.begin(), ended.end()) -
                                                *std::min_element(started.begin(), started.end()))
                      .count();
    d.cpu_s = process_cpu_seconds() - cpu0;
    if (failed) fail(error);
    for (auto& l : lat) d.sorted_ns.insert(d.sorted_ns.end(), l.ns_per_op.begin(), l.ns_per_op.end());
    std::sort(d.sorted_ns.begin(), d.sorted_ns.end());
    d.client_bytes = std::accumulate(done_bytes.begin(), done_bytes.end(), uint64_t{0});
    return d;
  }

  // One case as a JSON object: what the clients did and what reached every
  // backing device (write amplification, metadata, flushes).
  nlohmann::json case_json(const Setup& s, uint64_t n, uint64_t chunk, const std::string& w, uint64_t threads,
                           const Drive& d, const std::vector<uint64_t>& exceptions_before) const {
    const std::vector<uint32_t>& all = d.sorted_ns;
    const double mean_us =
        all.empty() ? 0
                    : std::accumulate(all.begin(), all.end(), 0.0) / static_cast<double>(all.size()) / 1000.0;

    const auto oc = origin_.counting->counters();
    uint64_t cow_written = 0, cow_zeroed = 0, cow_flushes = 0, cow_durable = 0, cow_data = 0, cow_meta = 0;
    uint64_t exceptions = 0;
    uint64_t table_bytes = 0, table_exceptions = 0;
    for (size_t i = 0; i < s.cows.size(); ++i) {
      const auto c = s.cows[i].counting->counters();
      cow_written += c.bytes_written;
      cow_zeroed += c.bytes_zeroed;
      cow_flushes += c.flushes;
      cow_durable += c.durable_writes;
      cow_data += s.cows[i].classifier->data_bytes();
      cow_meta += s.cows[i].classifier->metadata_bytes();
      exceptions += s.snapshots[i]->exception_count() - exceptions_before[i];
      table_bytes += s.snapshots[i]->exception_table_bytes();
      table_exceptions += s.snapshots[i]->exception_count();
    }
    // Cross-check of the classifier: COW bytes minus whole copied chunks.
    const uint64_t meta_by_subtraction = cow_written + cow_zeroed - std::min(cow_written, exceptions * chunk);
    const uint64_t backing = oc.bytes_written + oc.bytes_zeroed + cow_written + cow_zeroed;
    auto ratio = [](uint64_t a, uint64_t b) {
      return b == 0 ? 0.0 : static_cast<double>(a) / static_cast<double>(b);
    };
    const double elapsed = d.elapsed_s;
    return {
        {"bench", "cow_bench"},
        {"device", o_.memory ? "memory" : "file"},
        {"snapshots", n},
        {"chunk_bytes", n == 0 ? 0 : chunk},
        {"workload", w},
        {"concurrency", threads},
        {"ops", all.size()},
        {"client_bytes", d.client_bytes},
        {"elapsed_s", elapsed},
        {"cpu_s", d.cpu_s},
        {"origin_bytes", oc.bytes_written + oc.bytes_zeroed},
        {"cow_data_bytes", cow_data},
        {"cow_metadata_bytes", cow_meta + cow_zeroed},
        {"cow_metadata_write_bytes", cow_meta},
        {"cow_zeroed_bytes", cow_zeroed},
        {"cow_metadata_bytes_by_subtraction", meta_by_subtraction},
        {"backing_bytes", backing},
        {"exceptions", exceptions},
        {"origin_flushes", oc.flushes},
        {"cow_flushes", cow_flushes},
        // Write-back commits make copies durable with O_DSYNC writes, not flushes.
        {"cow_durable_writes", cow_durable},
        {"flushes", oc.flushes + cow_flushes},
        {"write_amplification", ratio(backing, d.client_bytes)},
        {"throughput_mib_s",
         elapsed > 0 ? static_cast<double>(d.client_bytes) / static_cast<double>(kMiB) / elapsed : 0.0},
        {"iops", elapsed > 0 ? static_cast<double>(all.size()) / elapsed : 0.0},
        {"lat_us",
         {{"p50", percentile_us(all, 50)},
          {"p99", percentile_us(all, 99)},
          {"p99_9", percentile_us(all, 99.9)},
          {"mean", mean_us},
          {"max", all.empty() ? 0.0 : static_cast<double>(all.back()) / 1000.0}}},
        {"table_bytes_per_exception",
         table_exceptions == 0 ? 0.0
                               : static_cast<double>(table_bytes) / static_cast<double>(table_exceptions)},
        {"table_exceptions", table_exceptions},
        {"mode", mode()},
        {"final_flush_s", d.flush_s},
    };
  }

  // The case as a JSON line on stdout and, unless --quiet, a summary line
  // on stderr.
  void print_case(const nlohmann::json& j, const Drive& d) const {
    (void)std::printf("%s\n", j.dump().c_str());
    (void)std::fflush(stdout);
    if (o_.quiet) return;
    const uint64_t n = j["snapshots"].get<uint64_t>();
    (void)std::fprintf(stderr,
                       "%-14s snaps=%" PRIu64 " chunk=%4" PRIu64 "K T=%-2" PRIu64
                       " ops=%-6zu %9.2f MiB/s  WA=%7.3f  p50=%9.1fus p99=%9.1fus\n",
                       j["workload"].get<std::string>().c_str(), n, j["chunk_bytes"].get<uint64_t>() / kKiB,
                       j["concurrency"].get<uint64_t>(), d.sorted_ns.size(),
                       j["throughput_mib_s"].get<double>(), j["write_amplification"].get<double>(),
                       percentile_us(d.sorted_ns, 50), percentile_us(d.sorted_ns, 99));
  }

  Options o_;
  bool remove_dir_ = false;
  Backing origin_;
};

int run(int argc, char** argv) {
  Bench bench(parse_args(argc, argv));
  return bench.run();
}

}  // namespace

int main(int argc, char** argv) { return cowsnap::bench::guarded_main(argc, argv, run); }
