#include "copier.h"

#include <fmt/format.h>
#include <libnbd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <mutex>
#include <thread>

namespace cowsnap::backup {

namespace {

// A unit of work is the runs within one span of the image: one
// connection's, one block status request's.
constexpr uint64_t kUnitBytes = uint64_t{64} << 20;
// Runs closer than this are read in one request, the gap read and thrown
// away: fewer, larger requests cost less than the gap's bytes.
constexpr uint64_t kGapBytes = uint64_t{64} << 10;

struct Unit {
  std::vector<ChunkRun> runs;  // ascending, within kUnitBytes of the first's start
};

// One read request: chunks [first, first + count), of which `pieces` are
// wanted (the rest is gap).
struct Read {
  uint64_t first = 0;
  uint64_t count = 0;
  std::vector<ChunkRun> pieces;
};

struct Shared {
  Shared(const NbdAddress& a, const std::string& e, uint64_t size, uint64_t chunk, ChunkSink& s,
         const CopyOptions& o)
      : address(a), export_name(e), size_bytes(size), chunk_bytes(chunk), sink(s), options(o) {}
  const NbdAddress& address;
  const std::string& export_name;
  uint64_t size_bytes;
  uint64_t chunk_bytes;
  std::vector<Unit> units;
  ChunkSink& sink;
  const CopyOptions& options;
  std::atomic<size_t> next{0};
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> copied{0}, zero{0};
  std::mutex error_mu;
  Status error;  // the first; guarded by error_mu

  void fail(Status s) {
    std::lock_guard lock(error_mu);
    if (error.ok()) error = std::move(s);
    stop = true;
  }
  void done(uint64_t bytes) const {
    if (options.done_bytes != nullptr) options.done_bytes->fetch_add(bytes, std::memory_order_relaxed);
  }
  [[nodiscard]] uint64_t bytes_of(uint64_t first, uint64_t count) const {
    return std::min(size_bytes, (first + count) * chunk_bytes) - first * chunk_bytes;
  }
};

struct Slot {
  std::vector<uint8_t> buf;
  Read read;
  uint64_t length = 0;
  bool busy = false;
  bool complete = false;
  int error = 0;
};

int on_read_done(void* user_data, int* error) {
  auto* slot = static_cast<Slot*>(user_data);
  slot->complete = true;
  slot->error = *error;
  return 1;  // retire the command
}

// Which chunks of [first, first + count) lie wholly in zero runs of `map`
// (the map of exactly those chunks' bytes).
std::vector<bool> zero_chunks(const Shared& shared, const ExtentMap& map, uint64_t first, uint64_t count) {
  std::vector<bool> zero(count, false);
  const uint64_t begin = first * shared.chunk_bytes;
  uint64_t at = begin;
  for (const ExtentMap::Run& run : map.runs()) {
    if (run.zero) {
      const uint64_t from = (at - begin + shared.chunk_bytes - 1) / shared.chunk_bytes;
      // A run reaching the image's end covers its short last chunk too.
      const uint64_t to = at + run.length >= shared.size_bytes
                              ? count
                              : std::min<uint64_t>(count, (at + run.length - begin) / shared.chunk_bytes);
      for (uint64_t i = from; i < to; ++i) zero[i] = true;
    }
    at += run.length;
  }
  return zero;
}

// One connection's loop: takes units until none is left.
void run_connection(Shared& shared) {
  auto opened = NbdConnection::open(shared.address, shared.export_name);
  if (!opened.ok()) return shared.fail(opened.status());
  NbdConnection& c = **opened;
  if (c.size_bytes() < shared.size_bytes) {
    return shared.fail(Status::Error(
        EIO, fmt::format("{} is {} bytes, not {}", c.name(), c.size_bytes(), shared.size_bytes)));
  }
  const uint64_t per_request = std::max<uint64_t>(
      1, std::min(shared.options.request_bytes, c.max_request_bytes()) / shared.chunk_bytes);
  const uint64_t gap_chunks = kGapBytes / shared.chunk_bytes;
  std::vector<Slot> slots(static_cast<size_t>(std::max(1, shared.options.requests_per_connection)));
  for (Slot& s : slots) s.buf.resize(per_request * shared.chunk_bytes);
  size_t in_flight = 0;

  auto finish = [&](Slot& s) -> Status {
    s.busy = s.complete = false;
    --in_flight;
    if (s.error != 0) {
      return Status::Error(
          s.error, fmt::format("{}: read {}+{}", c.name(), s.read.first * shared.chunk_bytes, s.length));
    }
    for (const ChunkRun& p : s.read.pieces) {
      const uint64_t bytes = shared.bytes_of(p.first, p.count);
      const uint64_t at = (p.first - s.read.first) * shared.chunk_bytes;
      COWSNAP_RETURN_IF_ERROR(shared.sink.put(p.first, std::span(s.buf.data() + at, bytes)));
      shared.copied += bytes;
      shared.done(bytes);
    }
    return Status::Ok();
  };
  // Finishes every completed read; when none has, waits for progress
  // first. (Reads also complete while a synchronous block status call
  // waits for its reply, so completed ones are looked for before polling:
  // polling with nothing left in flight would wait forever.)
  auto finish_completed = [&](bool& any) -> Status {
    for (Slot& s : slots) {
      if (s.busy && s.complete) {
        any = true;
        COWSNAP_RETURN_IF_ERROR(finish(s));
      }
    }
    return Status::Ok();
  };
  auto reap = [&]() -> Status {
    bool any = false;
    COWSNAP_RETURN_IF_ERROR(finish_completed(any));
    if (any) return Status::Ok();
    if (nbd_poll(c.handle(), -1) == -1) return c.error("poll");
    return finish_completed(any);
  };
  auto submit = [&](Read read) -> Status {
    while (in_flight == slots.size()) COWSNAP_RETURN_IF_ERROR(reap());
    Slot& s = *std::find_if(slots.begin(), slots.end(), [](const Slot& x) { return !x.busy; });
    s.length = shared.bytes_of(read.first, read.count);
    s.read = std::move(read);
    s.busy = true;
    s.complete = false;
    s.error = 0;
    ++in_flight;
    if (nbd_aio_pread(c.handle(), s.buf.data(), s.length, s.read.first * shared.chunk_bytes,
                      nbd_completion_callback{on_read_done, &s, nullptr}, 0) == -1) {
      s.busy = false;
      --in_flight;
      return c.error(fmt::format("read {}+{}", s.read.first * shared.chunk_bytes, s.length));
    }
    return Status::Ok();
  };

  auto run_unit = [&](const Unit& u) -> Status {
    const uint64_t span_first = u.runs.front().first;
    const uint64_t span_count = u.runs.back().first + u.runs.back().count - span_first;
    ExtentMap map;
    COWSNAP_RETURN_IF_ERROR(
        c.extents(span_first * shared.chunk_bytes, shared.bytes_of(span_first, span_count), map));
    const std::vector<bool> zero = zero_chunks(shared, map, span_first, span_count);
    // Zero chunks are done at once; the others gather into reads.
    Read read;
    auto flush_read = [&]() -> Status {
      if (read.pieces.empty()) return Status::Ok();
      Read r = std::move(read);
      read = Read{};
      return submit(std::move(r));
    };
    for (const ChunkRun& run : u.runs) {
      for (uint64_t i = run.first; i < run.first + run.count && !shared.stop;) {
        const bool z = zero[i - span_first];
        uint64_t j = i;
        while (j < run.first + run.count && zero[j - span_first] == z) ++j;
        if (z) {
          COWSNAP_RETURN_IF_ERROR(shared.sink.put_zero(i, j - i));
          const uint64_t bytes = shared.bytes_of(i, j - i);
          shared.zero += bytes;
          shared.done(bytes);
          i = j;
          continue;
        }
        // Data chunks [i, j), in requests of at most per_request chunks.
        while (i < j) {
          const bool joins = !read.pieces.empty() && i - (read.first + read.count) <= gap_chunks &&
                             i + 1 - read.first <= per_request;
          if (!joins) {
            COWSNAP_RETURN_IF_ERROR(flush_read());
            read.first = i;
            read.count = 0;
          }
          const uint64_t n = std::min(j - i, per_request - (i - read.first));
          read.pieces.push_back(ChunkRun{i, n});
          read.count = i + n - read.first;
          i += n;
        }
      }
    }
    return flush_read();
  };

  Status status;
  while (status.ok() && !shared.stop) {
    const size_t k = shared.next.fetch_add(1);
    if (k >= shared.units.size()) break;
    status = run_unit(shared.units[k]);
  }
  while (status.ok() && in_flight > 0) status = reap();
  // After an error, reads still in flight land in buffers that live until
  // the connection is closed below.
  while (!status.ok() && in_flight > 0 && nbd_aio_in_flight(c.handle()) > 0) {
    if (nbd_poll(c.handle(), -1) == -1) break;
  }
  if (!status.ok()) shared.fail(std::move(status));
}

}  // namespace

Result<CopyStats> copy_chunks(const NbdAddress& address, const std::string& export_name, uint64_t size_bytes,
                              uint64_t chunk_bytes, const std::vector<ChunkRun>& runs, ChunkSink& sink,
                              const CopyOptions& options) {
  Shared shared(address, export_name, size_bytes, chunk_bytes, sink, options);
  const uint64_t per_unit = std::max<uint64_t>(1, kUnitBytes / chunk_bytes);
  for (const ChunkRun& r : runs) {
    for (uint64_t done = 0; done < r.count;) {
      const uint64_t first = r.first + done;
      if (shared.units.empty() || first >= shared.units.back().runs.front().first + per_unit) {
        shared.units.emplace_back();
      }
      Unit& u = shared.units.back();
      const uint64_t unit_first = u.runs.empty() ? first : u.runs.front().first;
      const uint64_t n = std::min(r.count - done, unit_first + per_unit - first);
      u.runs.push_back(ChunkRun{first, n});
      done += n;
    }
  }
  const size_t threads = std::min<size_t>(static_cast<size_t>(std::max(1, options.connections)),
                                          std::max<size_t>(1, shared.units.size()));
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (size_t i = 0; i < threads; ++i) pool.emplace_back([&shared] { run_connection(shared); });
  for (std::thread& t : pool) t.join();
  if (!shared.error.ok()) return shared.error;
  return CopyStats{shared.copied.load(), shared.zero.load()};
}

}  // namespace cowsnap::backup
