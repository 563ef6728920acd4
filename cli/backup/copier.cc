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

// Block status is asked for per unit of work; a unit is one connection's
// for the time it takes.
constexpr uint64_t kUnitBytes = uint64_t{64} << 20;

struct Unit {
  uint64_t first = 0;  // chunk
  uint64_t count = 0;
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
  uint64_t first = 0;
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

// One connection's loop: takes units until none is left.
void run_connection(Shared& shared) {
  auto opened = NbdConnection::open(shared.address, shared.export_name);
  if (!opened.ok()) return shared.fail(opened.status());
  NbdConnection& c = **opened;
  if (c.size_bytes() < shared.size_bytes) {
    return shared.fail(Status::Error(
        EIO, fmt::format("{} is {} bytes, not {}", c.name(), c.size_bytes(), shared.size_bytes)));
  }
  const uint64_t request =
      std::max(shared.chunk_bytes, std::min(shared.options.request_bytes, c.max_request_bytes()) /
                                       shared.chunk_bytes * shared.chunk_bytes);
  std::vector<Slot> slots(static_cast<size_t>(std::max(1, shared.options.requests_per_connection)));
  for (Slot& s : slots) s.buf.resize(request);
  size_t in_flight = 0;

  auto finish = [&](Slot& s) -> Status {
    s.busy = s.complete = false;
    --in_flight;
    if (s.error != 0) {
      return Status::Error(s.error,
                           fmt::format("{}: read {}+{}", c.name(), s.first * shared.chunk_bytes, s.length));
    }
    COWSNAP_RETURN_IF_ERROR(shared.sink.put(s.first, std::span(s.buf.data(), s.length)));
    shared.copied += s.length;
    shared.done(s.length);
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
  auto submit = [&](uint64_t first, uint64_t count) -> Status {
    while (in_flight == slots.size()) COWSNAP_RETURN_IF_ERROR(reap());
    Slot& s = *std::find_if(slots.begin(), slots.end(), [](const Slot& x) { return !x.busy; });
    s.first = first;
    s.length = shared.bytes_of(first, count);
    s.busy = true;
    s.complete = false;
    s.error = 0;
    ++in_flight;
    if (nbd_aio_pread(c.handle(), s.buf.data(), s.length, first * shared.chunk_bytes,
                      nbd_completion_callback{on_read_done, &s, nullptr}, 0) == -1) {
      s.busy = false;
      --in_flight;
      return c.error(fmt::format("read {}+{}", first * shared.chunk_bytes, s.length));
    }
    return Status::Ok();
  };
  const uint64_t per_request = request / shared.chunk_bytes;

  auto run_unit = [&](const Unit& u) -> Status {
    ExtentMap map;
    const uint64_t begin = u.first * shared.chunk_bytes;
    COWSNAP_RETURN_IF_ERROR(c.extents(begin, shared.bytes_of(u.first, u.count), map));
    // A chunk is skipped only when it lies wholly in a zero run.
    std::vector<bool> zero(u.count, false);
    uint64_t at = begin;
    for (const ExtentMap::Run& run : map.runs()) {
      if (run.zero) {
        const uint64_t from = (at - begin + shared.chunk_bytes - 1) / shared.chunk_bytes;
        const uint64_t to = std::min<uint64_t>(u.count, (at + run.length - begin) / shared.chunk_bytes);
        for (uint64_t i = from; i < to; ++i) zero[i] = true;
        // The image's short last chunk, when the run reaches the end.
        if (at + run.length >= shared.size_bytes && from < u.count) {
          for (uint64_t i = from; i < u.count; ++i) zero[i] = true;
        }
      }
      at += run.length;
    }
    for (uint64_t i = 0; i < u.count && !shared.stop;) {
      uint64_t j = i;
      while (j < u.count && zero[j] == zero[i] && (zero[i] || j - i < per_request)) ++j;
      if (zero[i]) {
        COWSNAP_RETURN_IF_ERROR(shared.sink.put_zero(u.first + i, j - i));
        const uint64_t bytes = shared.bytes_of(u.first + i, j - i);
        shared.zero += bytes;
        shared.done(bytes);
      } else {
        COWSNAP_RETURN_IF_ERROR(submit(u.first + i, j - i));
      }
      i = j;
    }
    return Status::Ok();
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
    for (uint64_t done = 0; done < r.count; done += per_unit) {
      shared.units.push_back(Unit{r.first + done, std::min(per_unit, r.count - done)});
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
