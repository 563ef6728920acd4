// The write-back pending table and its committer (write_back.h).
#include "write_back.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <new>
#include <system_error>
#include <unordered_map>

#include "copy_out_pool.h"

namespace cowsnap {

namespace {

constexpr auto kRetryDelay = std::chrono::milliseconds(100);

}  // namespace

WriteBack::WriteBack(Origin& origin, WriteBackOptions options) : origin_(origin), options_(options) {
  committer_ = std::thread([this] { run(); });
}

WriteBack::~WriteBack() {
  (void)drain();
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  changed_.notify_all();
  committer_.join();
}

uint64_t WriteBack::entry_cost() const {
  // Old and new content of one region.
  return uint64_t{2} << origin_.region_shift_;
}

WriteBackStats WriteBack::stats() const {
  std::lock_guard lock(mu_);
  return {pending_bytes_, peak_bytes_, entries_.size()};
}

void WriteBack::add_dirty(Entry& e, uint64_t begin, uint64_t end) {
  auto it = e.dirty.upper_bound(begin);
  if (it != e.dirty.begin() && std::prev(it)->second >= begin) {
    --it;
    begin = it->first;
  }
  while (it != e.dirty.end() && it->first <= end) {
    end = std::max(end, it->second);
    it = e.dirty.erase(it);
  }
  e.dirty.emplace(begin, end);
}

void WriteBack::release(uint64_t reserved) {
  if (reserved == 0) return;
  {
    std::lock_guard lock(mu_);
    reserved_bytes_ -= reserved;
  }
  changed_.notify_all();
}

bool WriteBack::dirty_overlaps(uint64_t offset, uint64_t length) const {
  if (empty()) return false;
  const uint64_t region = uint64_t{1} << origin_.region_shift_;
  const uint64_t end = offset + length;
  std::lock_guard lock(mu_);
  for (auto it = entries_.lower_bound(offset & ~(region - 1)); it != entries_.end() && it->first < end;
       ++it) {
    for (const auto& [b, e] : it->second.dirty) {
      if (it->first + b < end && it->first + e > offset) return true;
    }
  }
  return false;
}

Status WriteBack::write(uint64_t offset, std::span<const uint8_t> buf,
                        const std::vector<std::shared_ptr<SnapshotTarget>>& active) {
  const uint64_t region = uint64_t{1} << origin_.region_shift_;
  const uint64_t end = offset + buf.size();
  const uint64_t first = offset & ~(region - 1);
  BlockDevice& real = origin_.real();
  auto regions_lacking_entries = [&] {
    uint64_t n = 0;
    for (uint64_t r = first; r < end; r += region)
      if (!entries_.contains(r)) ++n;
    return n;
  };
  // No snapshot needs a copy and no pending byte is there to be overtaken:
  // straight to the device, as in the synchronous mode.
  if (!Origin::needs_copy(active, offset, end) && !dirty_overlaps(offset, buf.size())) {
    return real.write(offset, buf);
  }
  for (;;) {
    // Memory is reserved before any region lock is taken, so a writer that
    // waits here never holds up the committer (W2).
    uint64_t reserved = 0;
    {
      std::unique_lock lock(mu_);
      COWSNAP_RETURN_IF_ERROR(error_);
      reserved = regions_lacking_entries() * entry_cost();
      changed_.wait(lock, [&] {
        const uint64_t used = pending_bytes_ + reserved_bytes_;
        return !error_.ok() || used == 0 || used + reserved <= options_.max_pending_bytes;
      });
      if (!error_.ok()) return error_;
      reserved_bytes_ += reserved;
      peak_bytes_ = std::max(peak_bytes_, pending_bytes_ + reserved_bytes_);
    }
    auto locks = origin_.lock_regions(offset, buf.size());
    std::vector<uint64_t> had_entries;
    bool direct = false;
    {
      std::lock_guard lock(mu_);
      for (uint64_t r = first; r < end; r += region) {
        if (entries_.contains(r)) had_entries.push_back(r);
      }
      const uint64_t lacking = (end - first + region - 1) / region - had_entries.size();
      direct = had_entries.empty() && !Origin::needs_copy(active, offset, end);
      if (!direct && lacking * entry_cost() > reserved) {
        // An entry went away since the reservation: reserve again.
        reserved_bytes_ -= reserved;
        reserved = UINT64_MAX;
      }
    }
    if (reserved == UINT64_MAX) {
      changed_.notify_all();
      continue;
    }
    if (direct) {
      release(reserved);
      return real.write(offset, buf);
    }
    // The old content of the regions, read while no entry can appear for
    // them (their locks are held); used only for regions still lacking an
    // entry below, and only if no entry vanished meanwhile.
    const uint64_t padded = ((end + region - 1) & ~(region - 1)) - first;
    Bytes old;
    try {
      old.assign(padded, 0);
    } catch (const std::bad_alloc&) {
      release(reserved);
      return Status::Error(ENOMEM, "write-back: out of memory");
    }
    const uint64_t readable = std::min(padded, real.size_bytes() - first);
    Status s = real.read(first, std::span(old).first(readable));
    if (!s.ok()) {
      release(reserved);
      return s.with_context(fmt::format("write-back: reading {}", origin_.real_name()));
    }
    std::unique_lock lock(mu_);
    // An entry the committer dropped while the old content was read may
    // have reached the device after that read: start again. A region that
    // had no entry had none meanwhile (its lock is held), so the device
    // held its current content.
    const bool vanished = std::any_of(had_entries.begin(), had_entries.end(),
                                      [&](uint64_t r) { return !entries_.contains(r); });
    if (vanished || !error_.ok()) {
      reserved_bytes_ -= reserved;
      Status error = error_;
      lock.unlock();
      changed_.notify_all();
      if (!error.ok()) return error;
      continue;
    }
    try {
      const uint64_t seq = ++seq_;
      for (uint64_t r = first; r < end; r += region) {
        auto [it, created] = entries_.try_emplace(r);
        Entry& e = it->second;
        const std::span<const uint8_t> old_region = std::span(old).subspan(r - first, region);
        if (created) {
          e.old_data = std::make_shared<const Bytes>(old_region.begin(), old_region.end());
          e.new_data = std::make_shared<Bytes>(old_region.begin(), old_region.end());
          e.cost = entry_cost();
          pending_bytes_ += e.cost;
          reserved_bytes_ -= e.cost;
          reserved -= e.cost;
          entry_count_.store(entries_.size(), std::memory_order_release);
        } else if (e.new_data.use_count() > 1) {
          e.new_data = std::make_shared<Bytes>(*e.new_data);  // a batch holds the old buffer
        }
        const uint64_t b = std::max(offset, r);
        const uint64_t en = std::min(end, r + region);
        // Chunks of the write that some snapshot still needs (W3).
        for (const auto& snapshot : active) {
          const ChunkGeometry& g = snapshot->geometry();
          auto m = std::find_if(e.missing.begin(), e.missing.end(),
                                [&](const Missing& x) { return x.snapshot == snapshot; });
          for (ChunkIndex c = g.chunk_of(b); g.offset_of(c) < en; ++c.value) {
            if (m != e.missing.end() && m->chunks.contains(c.value)) continue;
            if (snapshot->has_exception(c)) continue;
            if (m == e.missing.end()) {
              e.missing.push_back({snapshot, {}});
              m = std::prev(e.missing.end());
            }
            m->chunks.insert(c.value);
          }
        }
        std::copy(buf.begin() + static_cast<std::ptrdiff_t>(b - offset),
                  buf.begin() + static_cast<std::ptrdiff_t>(en - offset),
                  e.new_data->begin() + static_cast<std::ptrdiff_t>(b - r));
        add_dirty(e, b - r, en - r);
        e.gen = seq;
        e.first_unwritten = std::min(e.first_unwritten, seq);
      }
    } catch (const std::bad_alloc&) {
      // Entries changed so far hold their bytes; the write as a whole is
      // reported failed, which NBD allows to have partly happened.
      reserved_bytes_ -= reserved;
      lock.unlock();
      changed_.notify_all();
      return Status::Error(ENOMEM, "write-back: out of memory");
    }
    reserved_bytes_ -= reserved;
    lock.unlock();
    changed_.notify_all();
    return Status::Ok();
  }
}

Status WriteBack::wait_regions_clear(uint64_t offset, uint64_t length) {
  const uint64_t region = uint64_t{1} << origin_.region_shift_;
  const uint64_t first = offset & ~(region - 1);
  const uint64_t end = offset + length;
  std::unique_lock lock(mu_);
  const uint64_t rounds = rounds_;
  auto clear = [&] {
    auto it = entries_.lower_bound(first);
    return it == entries_.end() || it->first >= end;
  };
  changed_.wait(lock, [&] { return clear() || (!error_.ok() && rounds_ > rounds); });
  if (clear()) return Status::Ok();
  return error_;
}

Status WriteBack::read(uint64_t offset, std::span<uint8_t> buf) {
  struct Overlay {
    uint64_t region;
    std::shared_ptr<Bytes> data;
    std::vector<std::pair<uint64_t, uint64_t>> dirty;
  };
  std::vector<Overlay> overlays;
  const uint64_t end = offset + buf.size();
  if (!empty()) {
    // Taken before the device is read: an entry dropped meanwhile was on the
    // device before it was dropped, and a buffer taken here is never changed
    // (writers clone a shared one).
    const uint64_t region = uint64_t{1} << origin_.region_shift_;
    std::lock_guard lock(mu_);
    for (auto it = entries_.lower_bound(offset & ~(region - 1)); it != entries_.end() && it->first < end;
         ++it) {
      overlays.push_back(
          {it->first, it->second.new_data, {it->second.dirty.begin(), it->second.dirty.end()}});
    }
  }
  COWSNAP_RETURN_IF_ERROR(origin_.real().read(offset, buf));
  for (const Overlay& o : overlays) {
    for (const auto& [b, e] : o.dirty) {
      const uint64_t from = std::max(offset, o.region + b);
      const uint64_t to = std::min(end, o.region + e);
      if (from >= to) continue;
      std::copy(o.data->begin() + static_cast<std::ptrdiff_t>(from - o.region),
                o.data->begin() + static_cast<std::ptrdiff_t>(to - o.region),
                buf.begin() + static_cast<std::ptrdiff_t>(from - offset));
    }
  }
  return Status::Ok();
}

bool WriteBack::read_old(const SnapshotTarget& snapshot, ChunkIndex chunk, uint64_t inner,
                         std::span<uint8_t> dst) {
  if (empty()) return false;
  const uint64_t region = uint64_t{1} << origin_.region_shift_;
  const uint64_t pos = snapshot.geometry().offset_of(chunk) + inner;
  std::lock_guard lock(mu_);
  auto it = entries_.find(pos & ~(region - 1));
  if (it == entries_.end()) return false;
  for (const Missing& m : it->second.missing) {
    if (m.snapshot.get() != &snapshot || !m.chunks.contains(chunk.value)) continue;
    const auto from = static_cast<std::ptrdiff_t>(pos - it->first);
    std::copy(it->second.old_data->begin() + from,
              it->second.old_data->begin() + from + static_cast<std::ptrdiff_t>(dst.size()), dst.begin());
    return true;
  }
  return false;
}

Status WriteBack::flush() {
  {
    std::unique_lock lock(mu_);
    const uint64_t target = seq_;
    const uint64_t rounds = rounds_;
    auto done = [&] {
      return std::all_of(entries_.begin(), entries_.end(),
                         [&](const auto& kv) { return kv.second.first_unwritten > target; });
    };
    changed_.wait(lock, [&] { return done() || (!error_.ok() && rounds_ > rounds); });
    if (!done()) return error_;
  }
  return origin_.real().flush();
}

Status WriteBack::drain() {
  std::unique_lock lock(mu_);
  const uint64_t rounds = rounds_;
  changed_.wait(lock, [&] { return entries_.empty() || (!error_.ok() && rounds_ > rounds); });
  if (entries_.empty()) return Status::Ok();
  return error_;
}

void WriteBack::forget(const SnapshotTarget* snapshot) {
  std::lock_guard round(round_mu_);
  std::lock_guard lock(mu_);
  for (auto& [r, e] : entries_) {
    std::erase_if(e.missing, [&](const Missing& m) { return m.snapshot.get() == snapshot; });
  }
}

void WriteBack::run() noexcept {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      changed_.wait(lock, [&] { return stopping_ || !entries_.empty(); });
      if (stopping_) return;
      if (options_.test_commit_delay_ms != 0) {
        changed_.wait_for(lock, std::chrono::milliseconds(options_.test_commit_delay_ms),
                          [&] { return stopping_; });
      }
    }
    bool ok = false;
    try {
      std::lock_guard round_lock(round_mu_);
      ok = round();
    } catch (...) {
      std::lock_guard lock(mu_);
      error_ = Status::Error(ENOMEM, "write-back: the committer ran out of memory");
      ++rounds_;
    }
    changed_.notify_all();
    if (!ok) {
      std::unique_lock lock(mu_);
      changed_.wait_for(lock, kRetryDelay, [&] { return stopping_; });
    }
  }
}

bool WriteBack::round() {
  struct Item {
    uint64_t region;
    uint64_t gen;
    std::shared_ptr<Bytes> data;
    std::vector<std::pair<uint64_t, uint64_t>> dirty;
  };
  struct Copy {
    std::shared_ptr<SnapshotTarget> snapshot;
    std::vector<ChunkIndex> chunks;
    std::vector<uint64_t> regions;  // regions[i] holds chunks[i]
    std::unordered_map<uint64_t, std::span<const uint8_t>> old;
    std::vector<std::shared_ptr<const Bytes>> pins;
    Status status;
  };
  std::vector<Item> items;
  std::vector<Copy> copies;
  {
    std::lock_guard lock(mu_);
    for (auto& [r, e] : entries_) {
      items.push_back({r, e.gen, e.new_data, {e.dirty.begin(), e.dirty.end()}});
      for (const Missing& m : e.missing) {
        auto c = std::find_if(copies.begin(), copies.end(),
                              [&](const Copy& x) { return x.snapshot == m.snapshot; });
        if (c == copies.end()) {
          copies.push_back({m.snapshot, {}, {}, {}, {}, Status::Ok()});
          c = std::prev(copies.end());
        }
        const ChunkGeometry& g = m.snapshot->geometry();
        c->pins.push_back(e.old_data);
        for (uint64_t chunk : m.chunks) {
          c->chunks.push_back(ChunkIndex{chunk});
          c->regions.push_back(r);
          c->old[chunk] = std::span<const uint8_t>(*e.old_data)
                              .subspan(g.offset_of(ChunkIndex{chunk}) - r, g.chunk_bytes());
        }
      }
    }
  }
  // One commit per store, the stores side by side. The chunks are covered
  // by pending entries, which keep snapshot writes of their regions waiting
  // (wait_regions_clear), so add_exceptions_locked's exclusion holds
  // without the region locks.
  const std::function<void(size_t)> copy_out = [&](size_t i) {
    Copy& c = copies[i];
    try {
      if (!c.snapshot->valid()) {
        c.status = c.snapshot->await_durably_invalid();
      } else {
        c.status = c.snapshot->add_exceptions_locked(c.chunks,
                                                     [&](ChunkIndex chunk) { return c.old.at(chunk.value); });
      }
    } catch (...) {
      c.status = Status::Error(EIO, fmt::format("write-back copy-out to {} failed", c.snapshot->cow_name()));
    }
  };
  CopyOutPool::shared().run(copies.size(), copy_out);
  Status failed = Status::Ok();
  {
    std::lock_guard lock(mu_);
    for (const Copy& c : copies) {
      // Durably invalid: its chunks need no copy any more (invariant 3).
      if (!c.status.ok() && !c.snapshot->durably_invalid()) {
        if (failed.ok()) failed = c.status;
        continue;
      }
      for (size_t i = 0; i < c.chunks.size(); ++i) {
        Entry& e = entries_.find(c.regions[i])->second;
        auto m = std::find_if(e.missing.begin(), e.missing.end(),
                              [&](const Missing& x) { return x.snapshot == c.snapshot; });
        if (m == e.missing.end()) continue;
        m->chunks.erase(c.chunks[i].value);
        if (m->chunks.empty()) e.missing.erase(m);
      }
    }
    if (!failed.ok()) {
      // W4: nothing of this batch reaches the origin.
      error_ = failed.with_context("write-back: copy-out failed, origin writes held back");
      ++rounds_;
      return false;
    }
  }
  // W1: every exception the batch's bytes depend on is durable now.
  BlockDevice& real = origin_.real();
  const uint64_t size = real.size_bytes();
  Status written = Status::Ok();
  Bytes run;
  uint64_t run_start = 0;
  auto flush_run = [&] {
    if (run.empty() || !written.ok()) return;
    written = real.write(run_start, run);
    run.clear();
  };
  for (const Item& item : items) {
    for (const auto& [b, e] : item.dirty) {
      const uint64_t from = item.region + b;
      const uint64_t to = std::min(item.region + e, size);
      if (from >= to) continue;
      if (!run.empty() && run_start + run.size() != from) flush_run();
      if (run.empty()) run_start = from;
      run.insert(run.end(), item.data->begin() + static_cast<std::ptrdiff_t>(b),
                 item.data->begin() + static_cast<std::ptrdiff_t>(to - item.region));
      if (run.size() >= (uint64_t{8} << 20)) flush_run();
    }
  }
  flush_run();
  std::lock_guard lock(mu_);
  ++rounds_;
  if (!written.ok()) {
    error_ = written.with_context(fmt::format("write-back: writing {}", origin_.real_name()));
    return false;
  }
  error_ = Status::Ok();
  for (const Item& item : items) {
    auto e = entries_.find(item.region);
    if (e->second.gen == item.gen && e->second.missing.empty()) {
      pending_bytes_ -= e->second.cost;
      entries_.erase(e);
    } else {
      e->second.first_unwritten = e->second.gen == item.gen ? UINT64_MAX : item.gen + 1;
    }
  }
  entry_count_.store(entries_.size(), std::memory_order_release);
  return true;
}

}  // namespace cowsnap
