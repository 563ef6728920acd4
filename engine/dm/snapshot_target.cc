// The snapshot's read and write paths (invariants 2-4 in cowsnap/snapshot.h).
#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <iterator>
#include <map>
#include <vector>

#include "cowsnap/dm/snapshot.h"
#include "write_back.h"

namespace cowsnap {

SnapshotTarget::SnapshotTarget(const std::shared_ptr<Origin>& origin, std::unique_ptr<ExceptionStore> store,
                               ExceptionTable exceptions, std::string cow_name)
    : origin_(origin),
      size_bytes_(origin->size_bytes()),
      store_(std::shared_ptr<ExceptionStore>(std::move(store))),
      geometry_(this->store()->geometry()),
      cow_name_(std::move(cow_name)),
      exceptions_(std::move(exceptions)),
      valid_(this->store()->valid()),
      invalid_durable_(!valid_) {
  if (!valid_) invalid_reason_ = "the COW store's header marks it invalid";
}

std::string SnapshotTarget::table_params() const {
  auto origin = origin_.lock();
  return fmt::format("{} {} {} {}", origin ? origin->real_name() : "-", cow_name_, store()->type_code(),
                     geometry_.chunk_sectors());
}

std::string SnapshotTarget::status_params() const {
  if (!valid()) return "Invalid";
  const StoreUsage u = store()->usage();
  return fmt::format("{}/{} {}", u.allocated_sectors, u.total_sectors, u.metadata_sectors);
}

uint64_t SnapshotTarget::exception_count() const {
  std::shared_lock lock(table_mu_);
  return exceptions_.size() - merged_chunks_;
}

size_t SnapshotTarget::exception_table_bytes() const {
  std::shared_lock lock(table_mu_);
  return exceptions_.memory_bytes();
}

bool SnapshotTarget::has_exception(ChunkIndex chunk) const { return find_exception(chunk).has_value(); }

namespace {

bool in_runs(const std::map<uint64_t, uint64_t>& runs, uint64_t chunk) {
  auto it = runs.upper_bound(chunk);
  if (it == runs.begin()) return false;
  return chunk < std::prev(it)->second;
}

}  // namespace

std::optional<ChunkIndex> SnapshotTarget::find_exception(ChunkIndex chunk) const {
  std::shared_lock lock(table_mu_);
  return lookup_locked(chunk);
}

std::optional<ChunkIndex> SnapshotTarget::lookup_locked(ChunkIndex chunk) const {
  std::optional<ChunkIndex> found = exceptions_.lookup(chunk);
  if (found && !merged_.empty() && in_runs(merged_, chunk.value)) return std::nullopt;
  return found;
}

void SnapshotTarget::mark_merged(ChunkIndex first, uint64_t count) {
  std::unique_lock lock(table_mu_);
  uint64_t begin = first.value;
  uint64_t end = first.value + count;
  // Runs touching the new one join it, so the map stays one entry per gap.
  auto it = merged_.lower_bound(begin);
  if (it != merged_.begin() && std::prev(it)->second >= begin) --it;
  while (it != merged_.end() && it->first <= end) {
    merged_chunks_ -= it->second - it->first;
    begin = std::min(begin, it->first);
    end = std::max(end, it->second);
    it = merged_.erase(it);
  }
  merged_.emplace(begin, end);
  merged_chunks_ += end - begin;
}

Status SnapshotTarget::invalidate_durably(const Status& why) {
  std::lock_guard lock(invalidate_mu_);
  if (valid_.load()) {
    {
      std::lock_guard why_lock(why_mu_);
      invalid_reason_ =
          fmt::format("{} (invalid since {:%Y-%m-%d %H:%M:%S})", why.message(),
                      std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()));
    }
    // Requests see the snapshot invalid from here on; origin changes that
    // skip it wait on invalidate_mu_ until the header below is durable.
    valid_.store(false, std::memory_order_release);
  }
  return persist_invalid_locked();
}

Status SnapshotTarget::persist_invalid_locked() {
  if (invalid_durable_.load(std::memory_order_acquire)) return Status::Ok();
  const Status persisted = store()->invalidate();
  if (!persisted.ok()) {
    return Status::Error(EIO, fmt::format("snapshot on {} is invalid but cannot be marked so on disk, so its "
                                          "origin is left unchanged: {}",
                                          cow_name_, persisted.message()));
  }
  invalid_durable_.store(true, std::memory_order_release);
  return Status::Ok();
}

Status SnapshotTarget::await_durably_invalid() {
  if (durably_invalid()) return Status::Ok();
  std::lock_guard lock(invalidate_mu_);
  return persist_invalid_locked();
}

Status SnapshotTarget::invalid_error() const {
  std::lock_guard<std::mutex> lock(why_mu_);
  return Status::Error(EIO, fmt::format("snapshot on {} is invalid: {}", cow_name_, invalid_reason_));
}

Result<std::shared_ptr<Origin>> SnapshotTarget::begin_request(uint64_t offset, uint64_t length) const {
  if (detached_.load()) return Status::Error(ENODEV, fmt::format("snapshot on {} was removed", cow_name_));
  if (merging()) {
    return Status::Error(EBUSY, fmt::format("snapshot on {} is merging into its origin", cow_name_));
  }
  if (!valid()) return invalid_error();
  COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, length));
  auto origin = origin_.lock();
  if (!origin) return Status::Error(ENODEV, fmt::format("snapshot on {}: its origin is gone", cow_name_));
  return origin;
}

namespace {

// "7" or "7-9": the origin (or COW) chunks of batch[first..last].
std::string chunk_range(std::span<const NewException> batch, size_t first, size_t last, bool old_side) {
  auto of = [&](size_t i) { return old_side ? batch[i].old_chunk.value : batch[i].cow_chunk.value; };
  if (first == last) return fmt::format("{}", of(first));
  return fmt::format("{}-{}", of(first), of(last));
}

}  // namespace

void SnapshotTarget::set_grower(GrowFn grow, uint32_t threshold_percent) {
  std::lock_guard lock(grow_mu_);
  grower_ = std::move(grow);
  grow_threshold_.store(threshold_percent, std::memory_order_release);
  growable_.store(static_cast<bool>(grower_), std::memory_order_release);
}

Status SnapshotTarget::grow_for_change(bool retry_busy) {
  std::lock_guard lock(grow_mu_);
  if (!must_grow_.load(std::memory_order_acquire)) return Status::Ok();  // grown while this change waited
  Status grown = grower_ ? grower_() : Status::Error(ENOSPC, "no grower");
  if (retry_busy && grown.errnum() == EBUSY) return grown;
  // A grower that cannot grow the store lets the next full store overflow
  // the snapshot, as without autoextend.
  if (!grown.ok()) growable_.store(false, std::memory_order_release);
  must_grow_.store(false, std::memory_order_release);
  return grown;
}

Status SnapshotTarget::add_exceptions_locked(std::span<const ChunkIndex> chunks,
                                             const ChunkDataFn& chunk_data, CopyOptions options) {
  // The store is full, invalid or could not commit: the snapshot cannot be
  // kept in step with its origin any more.
  auto invalidate_for = [&](const Status& s) {
    COWSNAP_RETURN_IF_ERROR(invalidate_durably(s));
    return invalid_error();
  };
  const std::shared_ptr<ExceptionStore> store = this->store();
  // Reserved together, the chunks are consecutive on the COW device as a
  // rule, so a request's copies go out in few writes.
  const bool grows = options.may_grow && growable_.load(std::memory_order_acquire);
  Result<std::vector<ChunkIndex>> cow_chunks =
      grows ? store->prepare_exceptions_if_room(chunks.size()) : store->prepare_exceptions(chunks.size());
  if (!cow_chunks.ok()) {
    if (grows && cow_chunks.status().errnum() == ENOSPC) {
      must_grow_.store(true, std::memory_order_release);
      return Status::Error(kMustGrow, fmt::format("snapshot on {}: its store is full and grows", cow_name_));
    }
    return invalidate_for(cow_chunks.status());
  }
  std::vector<NewException> batch;
  std::vector<std::span<const uint8_t>> data;
  batch.reserve(chunks.size());
  data.reserve(chunks.size());
  for (size_t i = 0; i < chunks.size(); ++i) {
    batch.push_back({chunks[i], (*cow_chunks)[i], options.durable_writes});
    data.push_back(chunk_data(chunks[i]));
  }
  std::vector<std::span<const uint8_t>> gather;
  for (size_t first = 0; first < batch.size();) {
    // A run: consecutive COW chunks, written as one. A plain write takes a
    // run whose sources follow each other in memory; a durable one gathers
    // its sources, since each durable write costs a cache flush.
    size_t last = first;
    gather.assign(1, data[first]);
    while (last + 1 < batch.size() && batch[last + 1].cow_chunk.value == batch[last].cow_chunk.value + 1) {
      const std::span<const uint8_t> next = data[last + 1];
      if (next.data() == gather.back().data() + gather.back().size()) {
        gather.back() = std::span(gather.back().data(), gather.back().size() + next.size());
      } else if (options.durable_writes) {
        gather.push_back(next);
      } else {
        break;
      }
      ++last;
    }
    const uint64_t at = geometry_.offset_of(batch[first].cow_chunk);
    Status s = options.durable_writes ? store->cow_device().write_gather_durable(at, gather)
                                      : store->cow_device().write(at, gather.front());
    if (!s.ok()) {
      // Nothing names these chunks on disk: hand them out again, and keep
      // the snapshot valid (invariant 5).
      for (const NewException& unused : batch) store->abandon_exception(unused.cow_chunk);
      return Status::Error(
          s.errnum(),
          fmt::format("snapshot on {}: copying origin chunk{} {} to COW chunk{} {} "
                      "failed, the snapshot stays valid: {}",
                      cow_name_, last > first ? "s" : "", chunk_range(batch, first, last, true),
                      last > first ? "s" : "", chunk_range(batch, first, last, false), s.message()));
    }
    first = last + 1;
  }
  Status s = store->commit_exceptions(batch);
  if (!s.ok()) return invalidate_for(s);
  {
    std::unique_lock lock(table_mu_);
    for (const NewException& e : batch) exceptions_.insert(e.old_chunk, e.cow_chunk);
  }
  if (grows) {
    const uint32_t threshold = grow_threshold_.load(std::memory_order_acquire);
    const StoreUsage usage = store->usage();
    if (threshold < 100 && usage.allocated_sectors * 100 >= uint64_t{threshold} * usage.total_sectors) {
      must_grow_.store(true, std::memory_order_release);
    }
  }
  return Status::Ok();
}

std::vector<SnapshotTarget::ChunkRun> SnapshotTarget::changed_chunks() const {
  std::vector<ChunkRun> runs;
  std::shared_lock lock(table_mu_);
  exceptions_.for_each([&](ChunkIndex old_chunk, ChunkIndex) {
    if (!merged_.empty() && in_runs(merged_, old_chunk.value)) return;
    if (!runs.empty() && runs.back().first + runs.back().count == old_chunk.value) {
      ++runs.back().count;
    } else {
      runs.push_back(ChunkRun{old_chunk.value, 1});
    }
  });
  return runs;
}

bool SnapshotTarget::has_all_exceptions(uint64_t offset, uint64_t length) const {
  std::shared_lock lock(table_mu_);
  for (ChunkIndex c = geometry_.chunk_of(offset); geometry_.offset_of(c) < offset + length; ++c.value) {
    if (!lookup_locked(c)) return false;
  }
  return true;
}

bool SnapshotTarget::has_any_exception(uint64_t offset, uint64_t length) const {
  std::shared_lock lock(table_mu_);
  for (ChunkIndex c = geometry_.chunk_of(offset); geometry_.offset_of(c) < offset + length; ++c.value) {
    if (lookup_locked(c)) return true;
  }
  return false;
}

Status SnapshotTarget::extents(uint64_t offset, uint64_t length, ExtentMap& out) {
  COWSNAP_ASSIGN_OR_RETURN(std::shared_ptr<Origin> origin, begin_request(offset, length));
  std::shared_lock io = origin->enter_io();
  // The origin's map first, then the table: a chunk that still has no
  // exception afterwards was not changed on the origin before the map was
  // taken (its copy-out commits first: invariant 1, and W1 in write-back
  // mode), so for it the map shows what the snapshot reads.
  ExtentMap real;
  COWSNAP_RETURN_IF_ERROR(origin->real().extents(offset, length, real));
  std::shared_lock table(table_mu_);
  uint64_t pos = offset;
  for (const ExtentMap::Run& run : real.runs()) {
    const uint64_t end = pos + run.length;
    if (!run.zero) {
      out.add(run.length, false);
      pos = end;
      continue;
    }
    while (pos < end) {
      const ChunkIndex c = geometry_.chunk_of(pos);
      const uint64_t n = std::min(end - pos, geometry_.chunk_bytes() - geometry_.offset_in_chunk(pos));
      out.add(n, !lookup_locked(c).has_value());
      pos += n;
    }
  }
  return Status::Ok();
}

Status SnapshotTarget::read(uint64_t offset, std::span<uint8_t> buf) {
  COWSNAP_ASSIGN_OR_RETURN(std::shared_ptr<Origin> origin, begin_request(offset, buf.size()));
  std::shared_lock io = origin->enter_io();
  // Under the region locks no copy-out is half done: each chunk is either
  // still unchanged on the origin or its exception is committed. Chunks
  // that all have exceptions need no lock (invariant 4).
  std::vector<std::unique_lock<std::mutex>> locks;
  if (!has_all_exceptions(offset, buf.size())) locks = origin->lock_regions(offset, buf.size());

  BlockDevice& cow = store()->cow_device();
  // Adjacent pieces that are adjacent on one device are read at once.
  BlockDevice* run_device = nullptr;
  uint64_t run_device_offset = 0, run_start = 0, run_length = 0;
  auto read_run = [&]() -> Status {
    if (run_length == 0) return Status::Ok();
    return run_device->read(run_device_offset, buf.subspan(run_start - offset, run_length));
  };
  const uint64_t end = offset + buf.size();
  for (uint64_t pos = offset; pos < end;) {
    const ChunkIndex c = geometry_.chunk_of(pos);
    const uint64_t inner = geometry_.offset_in_chunk(pos);
    const uint64_t n = std::min(end - pos, geometry_.chunk_bytes() - inner);
    BlockDevice* device = &origin->real();
    uint64_t device_offset = pos;
    // A chunk waiting for its write-back copy-out reads its old content
    // from memory; checked before the table (write_back.h, W3).
    if (!locks.empty() && origin->write_back_ &&
        origin->write_back_->read_old(*this, c, inner, buf.subspan(pos - offset, n))) {
      COWSNAP_RETURN_IF_ERROR(read_run());
      run_device = nullptr;
      run_length = 0;
      pos += n;
      continue;
    }
    if (auto e = find_exception(c)) {
      device = &cow;
      device_offset = geometry_.offset_of(*e) + inner;
    }
    if (device != run_device || device_offset != run_device_offset + run_length) {
      COWSNAP_RETURN_IF_ERROR(read_run());
      run_device = device;
      run_device_offset = device_offset;
      run_start = pos;
      run_length = 0;
    }
    run_length += n;
    pos += n;
  }
  COWSNAP_RETURN_IF_ERROR(read_run());
  // Checked after reading: an origin change that skipped this snapshot
  // happened only after it became invalid, so a snapshot still valid now
  // read nothing written after it was taken.
  if (!valid()) return invalid_error();
  return Status::Ok();
}

Status SnapshotTarget::write_range(Origin& origin, uint64_t offset, std::span<const uint8_t> buf) {
  std::vector<std::unique_lock<std::mutex>> locks;
  if (!has_all_exceptions(offset, buf.size())) {
    locks = origin.lock_regions(offset, buf.size());
    // Pending copy-outs of these regions finish first (invariant 9).
    if (origin.write_back_)
      COWSNAP_RETURN_IF_ERROR(origin.write_back_->wait_regions_clear(offset, buf.size()));
  }
  BlockDevice& cow = store()->cow_device();
  std::vector<ChunkIndex> missing;
  std::map<uint64_t, std::vector<uint8_t>> partial;  // whole images of partly written new chunks
  const uint64_t end = offset + buf.size();
  for (uint64_t pos = offset; pos < end;) {
    const ChunkIndex c = geometry_.chunk_of(pos);
    const uint64_t inner = geometry_.offset_in_chunk(pos);
    const uint64_t n = std::min(end - pos, geometry_.chunk_bytes() - inner);
    const std::span<const uint8_t> piece = buf.subspan(pos - offset, n);
    if (auto e = find_exception(c)) {
      COWSNAP_RETURN_IF_ERROR(cow.write(geometry_.offset_of(*e) + inner, piece));
    } else {
      missing.push_back(c);
      if (n != geometry_.chunk_bytes()) {
        // The rest of the chunk comes from the origin.
        std::vector<uint8_t>& whole = partial[c.value];
        whole.assign(geometry_.chunk_bytes(), 0);
        const uint64_t chunk_start = geometry_.offset_of(c);
        const uint64_t readable = std::min<uint64_t>(whole.size(), size_bytes_ - chunk_start);
        COWSNAP_RETURN_IF_ERROR(origin.real().read(chunk_start, std::span(whole).first(readable)));
        std::copy(piece.begin(), piece.end(), whole.begin() + static_cast<std::ptrdiff_t>(inner));
      }
    }
    pos += n;
  }
  if (missing.empty()) return Status::Ok();
  return add_exceptions_locked(
      missing,
      [&](ChunkIndex c) -> std::span<const uint8_t> {
        if (auto it = partial.find(c.value); it != partial.end()) return it->second;
        return buf.subspan(geometry_.offset_of(c) - offset, geometry_.chunk_bytes());
      },
      CopyOptions{.may_grow = true});
}

Status SnapshotTarget::write_growing(Origin& origin, uint64_t offset, std::span<const uint8_t> buf) {
  for (;;) {
    Status written;
    {
      std::shared_lock io = origin.enter_io();
      written = write_range(origin, offset, buf);
    }
    // Autoextend (set_grower), with the locks and the barrier let go: a
    // full store grows and the write (which wrote nothing that needed a
    // new exception) starts again; one past its threshold grows now.
    if (must_grow()) (void)grow_for_change();
    if (written.errnum() != kMustGrow) return written;
  }
}

Status SnapshotTarget::write(uint64_t offset, std::span<const uint8_t> buf) {
  COWSNAP_ASSIGN_OR_RETURN(std::shared_ptr<Origin> origin, begin_request(offset, buf.size()));
  COWSNAP_RETURN_IF_ERROR(write_growing(*origin, offset, buf));
  if (!valid()) return invalid_error();
  return Status::Ok();
}

Status SnapshotTarget::write_zeroes(uint64_t offset, uint64_t length) {
  COWSNAP_ASSIGN_OR_RETURN(std::shared_ptr<Origin> origin, begin_request(offset, length));
  const std::vector<uint8_t> zeroes(std::min<uint64_t>(length, uint64_t{1} << 20), 0);
  for (uint64_t done = 0; done < length;) {
    const uint64_t n = std::min<uint64_t>(length - done, zeroes.size());
    COWSNAP_RETURN_IF_ERROR(write_growing(*origin, offset + done, std::span(zeroes).first(n)));
    done += n;
  }
  if (!valid()) return invalid_error();
  return Status::Ok();
}

Status SnapshotTarget::flush() {
  if (detached_.load()) return Status::Error(ENODEV, fmt::format("snapshot on {} was removed", cow_name_));
  if (!valid()) return invalid_error();
  return store()->cow_device().flush();
}

}  // namespace cowsnap
