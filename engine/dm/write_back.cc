// The write-back pending table and its committer (write_back.h).
#include "write_back.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <new>
#include <system_error>

#include "copy_out_pool.h"

namespace cowsnap {

namespace {

constexpr auto kRetryDelay = std::chrono::milliseconds(100);
// What an entry costs besides its buffers: its table node, dirty ranges,
// missing lists and the buffers' control blocks, rounded up.
constexpr uint64_t kEntryOverhead = 512;
// A store's share of a batch at least this large is committed in two
// halves side by side.
constexpr size_t kSplitChunks = 256;

}  // namespace

WriteBack::WriteBack(Origin& origin, WriteBackOptions options)
    : origin_(origin), options_(options), buffers_(std::make_shared<BufferPool>(options.max_pending_bytes)) {
  committer_ = std::thread([this] { run(); });
  writer_ = std::thread([this] { write_loop(); });
}

WriteBack::~WriteBack() {
  (void)drain();
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  changed_.notify_all();
  write_ready_.notify_all();
  committer_.join();
  writer_.join();
}

std::shared_ptr<uint8_t[]> WriteBack::buffer(uint64_t bytes) {
  return std::allocate_shared_for_overwrite<uint8_t[]>(PoolAllocator<uint8_t>(buffers_), bytes);
}

uint64_t WriteBack::bytes_needed_locked(uint64_t first, uint64_t end) const {
  // A new entry holds the region's old and new content; an entry whose old
  // content was dropped may need it again (write() says when).
  const uint64_t region = uint64_t{1} << origin_.region_shift_;
  uint64_t bytes = 0;
  for (uint64_t r = first; r < end; r += region) {
    auto it = entries_.find(r);
    if (it == entries_.end()) {
      bytes += 2 * region + kEntryOverhead;
    } else if (!it->second.old_data) {
      bytes += region;
    }
  }
  return bytes;
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
      COWSNAP_RETURN_IF_ERROR(error_locked());
      reserved = bytes_needed_locked(first, end);
      changed_.wait(lock, [&] {
        const uint64_t used = pending_bytes_ + reserved_bytes_;
        return !error_locked().ok() || used == 0 || used + reserved <= options_.max_pending_bytes;
      });
      COWSNAP_RETURN_IF_ERROR(error_locked());
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
      direct = had_entries.empty() && !Origin::needs_copy(active, offset, end);
      if (!direct && bytes_needed_locked(first, end) > reserved) {
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
    std::shared_ptr<uint8_t[]> old;
    try {
      old = buffer(padded);
    } catch (const std::bad_alloc&) {
      release(reserved);
      return Status::Error(ENOMEM, "write-back: out of memory");
    }
    const uint64_t readable = std::min(padded, real.size_bytes() - first);
    std::fill(old.get() + readable, old.get() + padded, uint8_t{0});
    Status s = real.read(first, std::span(old.get(), readable));
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
    if (vanished || !error_locked().ok()) {
      reserved_bytes_ -= reserved;
      Status error = error_locked();
      lock.unlock();
      changed_.notify_all();
      if (!error.ok()) return error;
      continue;
    }
    try {
      const uint64_t seq = ++seq_;
      // The new content of the regions this write creates entries for: one
      // buffer, the size of the old one, so that both come back to the pool
      // in one size and the committer writes the regions to the device in
      // one piece.
      std::shared_ptr<uint8_t[]> fresh;
      if (had_entries.empty()) fresh = buffer(padded);
      for (uint64_t r = first; r < end; r += region) {
        auto [it, created] = entries_.try_emplace(r);
        Entry& e = it->second;
        const uint64_t b = std::max(offset, r);
        const uint64_t en = std::min(end, r + region);
        const uint8_t* old_region = old.get() + (r - first);
        if (created) {
          if (fresh) {
            e.old_data = std::shared_ptr<const uint8_t>(old, old_region);
            e.new_data = std::shared_ptr<uint8_t[]>(fresh, fresh.get() + (r - first));
          } else {
            // Only part of the read buffer is used: it is not kept.
            auto own = buffer(region);
            std::copy(old_region, old_region + region, own.get());
            e.old_data = std::shared_ptr<const uint8_t>(own, own.get());
            e.new_data = buffer(region);
          }
          if (en - b != region) std::copy(old_region, old_region + region, e.new_data.get());
          e.cost = 2 * region + kEntryOverhead;
          pending_bytes_ += e.cost;
          reserved_bytes_ -= e.cost;
          reserved -= e.cost;
          entry_count_.store(entries_.size(), std::memory_order_release);
        } else if (e.new_shared) {
          // A batch or a reader may be reading the buffer.
          auto copy = buffer(region);
          std::copy(e.new_data.get(), e.new_data.get() + region, copy.get());
          e.new_data = std::move(copy);
          e.new_shared = false;
        }
        // Chunks of the write that some snapshot still needs (W3).
        bool now_missing = false;
        for (const auto& snapshot : active) {
          const ChunkGeometry& g = snapshot->geometry();
          auto m = std::find_if(e.missing.begin(), e.missing.end(),
                                [&](const Missing& x) { return x.snapshot == snapshot; });
          for (ChunkIndex c = g.chunk_of(b); g.offset_of(c) < en; ++c.value) {
            if (m != e.missing.end() && std::binary_search(m->chunks.begin(), m->chunks.end(), c.value)) {
              continue;
            }
            if (snapshot->has_exception(c)) continue;
            if (m == e.missing.end()) {
              e.missing.push_back({snapshot, {}});
              m = std::prev(e.missing.end());
            }
            m->chunks.insert(std::upper_bound(m->chunks.begin(), m->chunks.end(), c.value), c.value);
            now_missing = true;
          }
        }
        if (now_missing && !e.old_data) {
          // The entry's chunks were all copied out and its old content
          // dropped (W6). A chunk missing now was never written since the
          // entry appeared, so the device, read above under the region's
          // lock, still holds its old bytes.
          auto own = buffer(region);
          std::copy(old_region, old_region + region, own.get());
          e.old_data = std::shared_ptr<const uint8_t>(own, own.get());
          e.cost += region;
          pending_bytes_ += region;
          reserved_bytes_ -= region;
          reserved -= region;
        }
        std::copy(buf.begin() + static_cast<std::ptrdiff_t>(b - offset),
                  buf.begin() + static_cast<std::ptrdiff_t>(en - offset), e.new_data.get() + (b - r));
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
  changed_.wait(lock, [&] { return clear() || (!error_locked().ok() && rounds_ > rounds); });
  if (clear()) return Status::Ok();
  return error_locked();
}

Status WriteBack::read(uint64_t offset, std::span<uint8_t> buf) {
  struct Overlay {
    uint64_t region;
    std::shared_ptr<const uint8_t[]> data;
    std::vector<std::pair<uint64_t, uint64_t>> dirty;
  };
  std::vector<Overlay> overlays;
  const uint64_t end = offset + buf.size();
  if (!empty()) {
    // Taken before the device is read: an entry dropped meanwhile was on the
    // device before it was dropped, and a buffer taken here is never changed
    // (writers copy a shared one before they change it).
    const uint64_t region = uint64_t{1} << origin_.region_shift_;
    std::lock_guard lock(mu_);
    for (auto it = entries_.lower_bound(offset & ~(region - 1)); it != entries_.end() && it->first < end;
         ++it) {
      overlays.push_back(
          {it->first, it->second.new_data, {it->second.dirty.begin(), it->second.dirty.end()}});
      it->second.new_shared = true;
    }
  }
  COWSNAP_RETURN_IF_ERROR(origin_.real().read(offset, buf));
  for (const Overlay& o : overlays) {
    for (const auto& [b, e] : o.dirty) {
      const uint64_t from = std::max(offset, o.region + b);
      const uint64_t to = std::min(end, o.region + e);
      if (from >= to) continue;
      std::copy(o.data.get() + (from - o.region), o.data.get() + (to - o.region),
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
    if (m.snapshot.get() != &snapshot || !std::binary_search(m.chunks.begin(), m.chunks.end(), chunk.value)) {
      continue;
    }
    const uint8_t* from = it->second.old_data.get() + (pos - it->first);
    std::copy(from, from + dst.size(), dst.begin());
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
    changed_.wait(lock, [&] { return done() || (!error_locked().ok() && rounds_ > rounds); });
    if (!done()) return error_locked();
  }
  return origin_.real().flush();
}

Status WriteBack::drain() {
  std::unique_lock lock(mu_);
  const uint64_t rounds = rounds_;
  changed_.wait(lock, [&] { return entries_.empty() || (!error_locked().ok() && rounds_ > rounds); });
  if (entries_.empty()) return Status::Ok();
  return error_locked();
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
      changed_.wait(lock,
                    [&] { return stopping_ || (!entries_.empty() && (seq_ != taken_seq_ || retake_)); });
      if (stopping_) return;
      if (options_.test_commit_delay_ms != 0) {
        changed_.wait_for(lock, std::chrono::milliseconds(options_.test_commit_delay_ms),
                          [&] { return stopping_; });
      }
    }
    std::vector<Item> items;
    std::vector<std::shared_ptr<SnapshotTarget>> to_grow;
    bool ok = false;
    try {
      std::lock_guard round_lock(round_mu_);
      {
        std::lock_guard lock(mu_);
        items = take_locked();
      }
      ok = copy_out(items, to_grow);
    } catch (...) {
      std::lock_guard lock(mu_);
      hand_back_locked(items);
      copy_error_ = Status::Error(ENOMEM, "write-back: the committer ran out of memory");
      ++rounds_;
    }
    if (ok) {
      // One batch is written while the next is copied out (W5).
      std::unique_lock lock(mu_);
      changed_.wait(lock, [&] { return !writing_ || stopping_; });
      if (stopping_) {
        hand_back_locked(items);
        return;
      }
      to_write_ = std::move(items);
      writing_ = true;
      write_ready_.notify_one();
    }
    changed_.notify_all();
    // Autoextend, with no lock held: growing a store needs no barrier, so
    // the grower never waits for this thread. A batch handed back for it
    // is taken again at once.
    bool retry_later = !ok && to_grow.empty();
    for (const auto& s : to_grow) {
      Status grown = s->grow_for_change(/*retry_busy=*/true);
      if (grown.errnum() != EBUSY) continue;
      // The command holding the VG may be draining this origin: the round
      // fails, so its wait ends, and the batch is tried again later.
      std::lock_guard lock(mu_);
      copy_error_ =
          grown.with_context("write-back: a full snapshot store cannot grow yet, origin writes held back");
      ++rounds_;
      retry_later = true;
    }
    if (retry_later) {
      changed_.notify_all();
      std::unique_lock lock(mu_);
      changed_.wait_for(lock, kRetryDelay, [&] { return stopping_; });
    }
  }
}

std::vector<WriteBack::Item> WriteBack::take_locked() {
  std::vector<Item> items;
  items.reserve(entries_.size());
  for (auto& [r, e] : entries_) {
    if (e.taken_gen == e.gen) continue;  // in the batch being written, unchanged since
    items.push_back({r, e.gen, e.new_data, {e.dirty.begin(), e.dirty.end()}});
    e.taken_gen = e.gen;
    e.new_shared = true;
  }
  taken_seq_ = seq_;
  retake_ = false;
  return items;
}

void WriteBack::hand_back_locked(const std::vector<Item>& items) {
  for (const Item& item : items) {
    auto e = entries_.find(item.region);
    if (e != entries_.end() && e->second.taken_gen == item.gen) e->second.taken_gen = 0;
  }
  retake_ = true;
}

bool WriteBack::copy_out(std::vector<Item>& items, std::vector<std::shared_ptr<SnapshotTarget>>& to_grow) {
  struct Copy {
    std::shared_ptr<SnapshotTarget> snapshot;
    std::vector<ChunkIndex> chunks;   // ascending, as the entries and their lists are
    std::vector<uint64_t> regions;    // regions[i] holds chunks[i]
    std::vector<const uint8_t*> old;  // old[i]: the old content of chunks[i]
    std::vector<std::shared_ptr<const uint8_t>> pins;
    Status status;
  };
  std::vector<Copy> copies;
  {
    std::lock_guard lock(mu_);
    for (const Item& item : items) {
      const Entry& e = entries_.find(item.region)->second;
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
          c->regions.push_back(item.region);
          c->old.push_back(e.old_data.get() + (g.offset_of(ChunkIndex{chunk}) - item.region));
        }
      }
    }
  }
  // One commit per store, the stores side by side; a large batch goes to a
  // store as two commits at once, so that the store's pipeline writes the
  // second's data while it flushes the first's. The chunks are covered by
  // pending entries, which keep snapshot writes of their regions waiting
  // (wait_regions_clear), so add_exceptions_locked's exclusion holds
  // without the region locks.
  struct Piece {
    size_t copy;
    size_t begin;
    size_t end;
    Status status;
  };
  std::vector<Piece> pieces;
  for (size_t i = 0; i < copies.size(); ++i) {
    const size_t n = copies[i].chunks.size();
    const size_t half = n >= kSplitChunks ? n / 2 : n;
    pieces.push_back({i, 0, half, Status::Ok()});
    if (half < n) pieces.push_back({i, half, n, Status::Ok()});
  }
  const std::function<void(size_t)> copy_piece = [&](size_t p) {
    Piece& piece = pieces[p];
    Copy& c = copies[piece.copy];
    try {
      if (!c.snapshot->valid()) {
        piece.status = c.snapshot->await_durably_invalid();
      } else {
        const uint64_t chunk_bytes = c.snapshot->geometry().chunk_bytes();
        const auto chunks = std::span(c.chunks).subspan(piece.begin, piece.end - piece.begin);
        piece.status = c.snapshot->add_exceptions_locked(
            chunks,
            [&](ChunkIndex chunk) {
              const auto at = std::lower_bound(c.chunks.begin(), c.chunks.end(), chunk) - c.chunks.begin();
              return std::span<const uint8_t>(c.old[static_cast<size_t>(at)], chunk_bytes);
            },
            SnapshotTarget::CopyOptions{.may_grow = true, .durable_writes = true});
      }
    } catch (...) {
      piece.status =
          Status::Error(EIO, fmt::format("write-back copy-out to {} failed", c.snapshot->cow_name()));
    }
  };
  CopyOutPool::shared().run(pieces.size(), copy_piece);
  Status failed = Status::Ok();
  bool must_grow = false;
  for (const Copy& c : copies) {
    // Full, or past its threshold (SnapshotTarget::set_grower).
    if (c.snapshot->must_grow()) to_grow.push_back(c.snapshot);
  }
  std::lock_guard lock(mu_);
  for (const Piece& piece : pieces) {
    const Copy& c = copies[piece.copy];
    if (piece.status.errnum() == SnapshotTarget::kMustGrow) {
      must_grow = true;  // nothing of this piece was copied
      continue;
    }
    // Durably invalid: its chunks need no copy any more (invariant 3).
    if (!piece.status.ok() && !c.snapshot->durably_invalid()) {
      if (failed.ok()) failed = piece.status;
      continue;
    }
    for (size_t i = piece.begin; i < piece.end; ++i) {
      Entry& e = entries_.find(c.regions[i])->second;
      auto m = std::find_if(e.missing.begin(), e.missing.end(),
                            [&](const Missing& x) { return x.snapshot == c.snapshot; });
      if (m == e.missing.end()) continue;
      auto at = std::lower_bound(m->chunks.begin(), m->chunks.end(), c.chunks[i].value);
      if (at != m->chunks.end() && *at == c.chunks[i].value) m->chunks.erase(at);
      if (m->chunks.empty()) e.missing.erase(m);
    }
  }
  // W6: an entry whose chunks are all copied out needs its old content no
  // more (snapshots read the COW stores for them now). The batch's own
  // hold on those buffers goes first, so that memory reported free is free.
  copies.clear();
  const uint64_t region = uint64_t{1} << origin_.region_shift_;
  for (const Item& item : items) {
    Entry& e = entries_.find(item.region)->second;
    if (e.missing.empty() && e.old_data) {
      e.old_data.reset();
      e.cost -= region;
      pending_bytes_ -= region;
    }
  }
  if (!failed.ok()) {
    // W4: nothing of this batch reaches the origin.
    hand_back_locked(items);
    copy_error_ = failed.with_context("write-back: copy-out failed, origin writes held back");
    ++rounds_;
    return false;
  }
  if (must_grow) {
    // Not an error: the caller grows the store and the batch goes again.
    hand_back_locked(items);
    return false;
  }
  copy_error_ = Status::Ok();
  return true;
}

void WriteBack::write_loop() noexcept {
  for (;;) {
    std::vector<Item> items;
    {
      std::unique_lock lock(mu_);
      write_ready_.wait(lock, [&] { return writing_ || stopping_; });
      if (!writing_) return;
      items = std::move(to_write_);
    }
    Status written = Status::Ok();
    try {
      written = write_items(items);
    } catch (...) {
      written = Status::Error(ENOMEM, "out of memory");
    }
    {
      std::lock_guard lock(mu_);
      ++rounds_;
      if (!written.ok()) {
        write_error_ = written.with_context(fmt::format("write-back: writing {}", origin_.real_name()));
        hand_back_locked(items);
      } else {
        write_error_ = Status::Ok();
        for (Item& item : items) {
          item.data.reset();  // before the entry's memory is reported free
          auto e = entries_.find(item.region);
          if (e == entries_.end()) continue;
          if (e->second.gen == item.gen && e->second.missing.empty()) {
            pending_bytes_ -= e->second.cost;
            entries_.erase(e);
            continue;
          }
          e->second.first_unwritten = e->second.gen == item.gen ? UINT64_MAX : item.gen + 1;
          if (e->second.taken_gen == item.gen) e->second.taken_gen = 0;
        }
        entry_count_.store(entries_.size(), std::memory_order_release);
      }
      to_write_.clear();
      writing_ = false;
    }
    changed_.notify_all();
  }
}

Status WriteBack::write_items(const std::vector<Item>& items) {
  // W1: every exception the batch's bytes depend on is durable now. Dirty
  // bytes that follow each other on the device and in memory (the regions
  // of one write) go out as one write.
  constexpr uint64_t kMaxWrite = uint64_t{4} << 20;
  BlockDevice& real = origin_.real();
  const uint64_t size = real.size_bytes();
  const uint8_t* run = nullptr;
  uint64_t run_start = 0;
  uint64_t run_bytes = 0;
  for (const Item& item : items) {
    for (const auto& [b, e] : item.dirty) {
      const uint64_t from = item.region + b;
      const uint64_t to = std::min(item.region + e, size);
      if (from >= to) continue;
      const uint8_t* bytes = item.data.get() + b;
      if (run_bytes != 0 &&
          (run_start + run_bytes != from || run + run_bytes != bytes || run_bytes >= kMaxWrite)) {
        COWSNAP_RETURN_IF_ERROR(real.write(run_start, std::span(run, run_bytes)));
        run_bytes = 0;
      }
      if (run_bytes == 0) {
        run = bytes;
        run_start = from;
      }
      run_bytes += to - from;
    }
  }
  if (run_bytes != 0) return real.write(run_start, std::span(run, run_bytes));
  return Status::Ok();
}

}  // namespace cowsnap
