// The persistent exception store ("P"), in the kernel's on-disk format.
//
// Durability protocol for one batch of exceptions (each step finishes
// before the next starts):
//   1. every metadata area the batch writes except the first, and the
//      zeroes of the area after a newly full one;
//   2. flush: the batch's data chunks and the step-1 writes are durable;
//   3. the first area the batch touches (the current area): only the
//      sectors holding the batch's entries;
//   4. flush: the batch is committed; callers are told OK.
// Batches are pipelined (PipelinedCommit): step 1 of batch k+1 is issued
// after step 3 of batch k, and one flush is both step 4 of k and step 2 of
// k+1, so in steady state a batch costs one flush. Batch k+1's callers
// wrote their data before they queued, before that flush started.
// A reader walks areas in order and only enters area i + 1 through a full
// area i. The current area is never full on disk before step 3, so every
// area the walk can reach through it holds zeroes or entries whose data is
// durable by the time step 3 makes them reachable. Batch k+1's step-1
// writes are to areas after its first area (batch k's last, or the zeroed
// one after it when k filled that), so they are unreachable until k+1's
// own step 3, which follows the flush that made batch k durable. A crash
// before step 4 ends leaves the table at the last committed prefix (or
// that prefix and some entries of the batch being published, all pointing
// at durable data). Any failed write or flush invalidates the store and
// fails both batches in flight.
// A batch whose every data chunk was written durably (write_durable: the
// write-back committer's copies) writes its own metadata durably too, and
// its flushes are skipped: each step is durable when it returns, which is
// all steps 2 and 4 ask, and the COW device's other dirty pages (origin
// data sharing the PV file) are not written out with it. A flush is still
// run whenever a plain write of either batch in flight is not yet covered.
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cowsnap/store/exception_store.h"
#include "group_commit.h"
#include "persistent_format.h"
#include "store_base.h"

namespace cowsnap {
namespace {

using pstore::AreaLayout;
using pstore::DiskException;
using pstore::DiskHeader;

using Pending = NewException;

// Where open_persistent_store found the committed state to continue from.
struct LoadedState {
  bool valid = true;
  uint64_t next_free = pstore::kHeaderChunks + 1;
  uint64_t current_area = 0;
  uint64_t committed = 0;                   // entries in the current area
  std::vector<uint8_t> current_area_bytes;  // entries then zeroes
};

class PersistentStore final : public StoreBase {
 public:
  PersistentStore(std::shared_ptr<BlockDevice> cow, ChunkGeometry geometry, LoadedState state)
      : StoreBase(std::move(cow), geometry, state.valid, state.next_free),
        layout_(geometry.chunk_bytes()),
        device_chunks_(geometry.chunks_in(cow_->size_bytes())),
        current_area_(state.current_area),
        area_(std::move(state.current_area_bytes)),
        committed_(state.committed) {
    area_.resize(geometry_.chunk_bytes());
  }

  [[nodiscard]] std::string_view type_code() const override { return "P"; }
  Status commit_exceptions(std::span<const NewException> exceptions) override {
    for (const NewException& e : exceptions) {
      // prepare_exception never hands out these; an entry naming one would
      // make the store refuse to open.
      if (e.cow_chunk.value < pstore::kHeaderChunks + 1 || e.cow_chunk.value >= device_chunks_ ||
          layout_.is_metadata_chunk(e.cow_chunk.value)) {
        return Status::Error(EINVAL, fmt::format("{}: chunk {} is not a data chunk of this snapshot store",
                                                 cow_->describe(), e.cow_chunk.value));
      }
    }
    if (exceptions.empty()) return Status::Ok();
    Stages stages{*this};
    return commits_.commit(exceptions, stages);
  }

  [[nodiscard]] size_t queued_commits() const override { return commits_.waiting(); }

  Status invalidate() override {
    mark_invalid();
    std::vector<uint8_t> header(geometry_.chunk_bytes(), 0);
    pstore::encode_header(DiskHeader{.valid = 0, .chunk_sectors = geometry_.chunk_sectors()}, header);
    Status s = cow_->write(0, header);
    if (s.ok()) s = cow_->flush();
    if (!s.ok()) {
      return Status::Error(
          EIO, fmt::format("{}: cannot mark the snapshot store invalid: {}", cow_->describe(), s.message()));
    }
    return Status::Ok();
  }

  // The kernel's merge (persistent_prepare_merge / _commit_merge): the
  // current area's image is the commit leader's, and no commit runs
  // beside a merge (the contract), so the merge owns it.
  Result<MergeRun> prepare_merge(uint64_t max_chunks) override {
    uint64_t area = 0;
    {
      std::lock_guard lock(mu_);
      if (!valid_) return invalid_error();
      area = current_area_;
    }
    if (committed_ == 0) {
      if (area == 0) return MergeRun{};
      // The walk reached `area` only through a full one before it.
      std::vector<uint8_t> bytes(geometry_.chunk_bytes());
      const uint64_t location = layout_.area_location(area - 1);
      if (Status s = cow_->read(geometry_.offset_of(ChunkIndex{location}), bytes); !s.ok()) {
        return Status::Error(EIO, fmt::format("{}: cannot read metadata area {} to merge it: {}",
                                              cow_->describe(), area - 1, s.message()));
      }
      area_ = std::move(bytes);
      committed_ = layout_.exceptions_per_area();
      std::lock_guard lock(mu_);
      current_area_ = area - 1;
    }
    const DiskException last = pstore::decode_exception(area_, committed_ - 1);
    const uint64_t limit = std::min(committed_, std::max<uint64_t>(max_chunks, 1));
    uint64_t n = 1;
    while (n < limit && last.old_chunk >= n && last.new_chunk >= n) {
      const DiskException e = pstore::decode_exception(area_, committed_ - 1 - n);
      if (e.old_chunk != last.old_chunk - n || e.new_chunk != last.new_chunk - n) break;
      ++n;
    }
    return MergeRun{.old_first = ChunkIndex{last.old_chunk + 1 - n},
                    .cow_first = ChunkIndex{last.new_chunk + 1 - n},
                    .chunks = n};
  }

  Status commit_merge(uint64_t chunks) override {
    if (chunks > committed_) {
      return Status::Error(EINVAL, fmt::format("{}: cannot merge {} chunk(s): the metadata area holds {}",
                                               cow_->describe(), chunks, committed_));
    }
    std::vector<uint8_t> image = area_;
    for (uint64_t i = 0; i < chunks; ++i) {
      pstore::encode_exception(image, committed_ - 1 - i, DiskException{});  // zeroes end the table here
    }
    uint64_t area = 0;
    {
      std::lock_guard lock(mu_);
      area = current_area_;
    }
    // The whole area, durably, as the kernel writes it (FUA after a flush
    // that the caller's origin flush stands in for).
    if (Status s = write_chunk(layout_.area_location(area), image, /*durable=*/true); !s.ok()) {
      return Status::Error(EIO, fmt::format("{}: cannot commit the merge of {} chunk(s): {}",
                                            cow_->describe(), chunks, s.message()));
    }
    area_ = std::move(image);
    committed_ -= chunks;
    std::lock_guard lock(mu_);
    // As the kernel counts it while merging: the chunks up to the last
    // entry left, so Data% falls to 0 as the merge ends.
    next_free_ = layout_.area_location(current_area_) + committed_ + 1;
    abandoned_.clear();
    return Status::Ok();
  }

  Status prepare_growth(BlockDevice& grown) override {
    COWSNAP_RETURN_IF_ERROR(ExceptionStore::prepare_growth(grown));
    const uint64_t old_chunks = device_chunks_.load();
    const uint64_t stride = layout_.exceptions_per_area() + 1;
    const uint64_t area = (old_chunks - pstore::kHeaderChunks + stride - 1) / stride;
    const uint64_t location = layout_.area_location(area);
    if (location >= geometry_.chunks_in(grown.size_bytes())) return Status::Ok();
    // Beyond the old end: no commit can write there yet.
    const std::vector<uint8_t> zeroes(geometry_.chunk_bytes(), 0);
    if (Status s = grown.write_durable(geometry_.offset_of(ChunkIndex{location}), zeroes); !s.ok()) {
      return Status::Error(EIO, fmt::format("{}: cannot zero metadata area {} before growing: {}",
                                            grown.describe(), area, s.message()));
    }
    return Status::Ok();
  }

  [[nodiscard]] StoreUsage usage() const override {
    std::lock_guard lock(mu_);
    const uint64_t cs = geometry_.chunk_sectors();
    return StoreUsage{.total_sectors = total_sectors_,
                      .allocated_sectors = chunks_in_use() * cs,
                      .metadata_sectors = (current_area_ + 1 + pstore::kHeaderChunks) * cs};
  }

 private:
  struct AreaImage {
    uint64_t area;
    std::vector<uint8_t> bytes;
  };

  [[nodiscard]] uint64_t next_after(uint64_t chunk) const override {
    return layout_.skip_metadata(chunk + 1);
  }

  void grew_locked() override { device_chunks_.store(geometry_.chunks_in(cow_->size_bytes())); }

  [[nodiscard]] Status full_error() const override {
    return Status::Error(
        ENOSPC, fmt::format("{}: snapshot store is full ({} data chunks of {} sectors)", cow_->describe(),
                            layout_.data_capacity(device_chunks_), geometry_.chunk_sectors()));
  }

  [[nodiscard]] Status invalid_error() const override {
    return Status::Error(EIO, fmt::format("{}: snapshot store is invalid", cow_->describe()));
  }

  // What publish() writes for a prepared batch: the sectors of its first
  // area that hold its entries.
  struct Plan {
    uint64_t first_area = 0;
    uint64_t from = 0;           // byte offset in the area
    std::vector<uint8_t> bytes;  // the area image's bytes from `from`
    size_t exceptions = 0;
    bool durable = false;  // every data chunk was written durably: so are this batch's metadata writes
  };

  // The PipelinedCommit stages (see its contract and the protocol at the
  // top of this file). They run one at a time, so the state below needs no
  // lock against other batches.
  struct Stages {
    PersistentStore& store;
    Status prepare(std::span<const Pending> batch) { return store.prepare_batch(batch); }
    Status flush() { return store.flush_batches(); }
    Status publish(std::span<const Pending> /*batch*/) { return store.publish_batch(); }
  };

  [[nodiscard]] Status batch_error(size_t exceptions, const Status& s) {
    mark_invalid();
    return Status::Error(EIO, fmt::format("{}: cannot commit {} exception(s), snapshot store invalidated: {}",
                                          cow_->describe(), exceptions, s.message()));
  }

  // Step 1 for a batch: entries go into the tail area's image and, past its
  // end, into images of the following areas (a batch may cross area
  // boundaries); those following areas and the zeroes after a newly full
  // area are written now, the first area's sectors are kept for publish.
  // The tail moves past the batch, so the next batch can be prepared before
  // this one is published.
  Status prepare_batch(std::span<const Pending> batch) {
    uint64_t area = 0;
    {
      std::lock_guard lock(mu_);
      if (!valid_) return invalid_error();
      area = current_area_;
    }
    const uint64_t first_area = area;
    const uint64_t per_area = layout_.exceptions_per_area();
    std::vector<AreaImage> later;
    const uint64_t first_slot = committed_;
    uint64_t slot = committed_;
    for (const Pending& p : batch) {
      if (slot == per_area) {
        later.push_back(AreaImage{++area, std::vector<uint8_t>(geometry_.chunk_bytes(), 0)});
        slot = 0;
      }
      std::span<uint8_t> image =
          later.empty() ? std::span<uint8_t>(area_) : std::span<uint8_t>(later.back().bytes);
      pstore::encode_exception(image, slot++, DiskException{p.old_chunk.value, p.cow_chunk.value});
    }
    const bool last_full = slot == per_area;
    // The area after a full one is zeroed so the walk stops there. When it
    // would start at or past the device's end, every chunk is allocated,
    // nothing can follow, and a reader ends the walk at the device's end.
    const bool zero_next = last_full && layout_.area_location(area + 1) < device_chunks_;

    // Of the first area only the sectors holding the batch's entries are
    // published: the rest is on disk already (entries committed before,
    // zeroes after), so a batch costs one sector of metadata, not a chunk.
    // Sector writes are atomic, so a torn write cannot damage the entries
    // already there. The first commit after opening rewrites the whole
    // area, dropping any debris past the end marker.
    const uint64_t to_slot = later.empty() ? slot : per_area;
    uint64_t from = (first_slot * pstore::kEntryBytes) / kSectorBytes * kSectorBytes;
    uint64_t to = (to_slot * pstore::kEntryBytes + kSectorBytes - 1) / kSectorBytes * kSectorBytes;
    if (rewrite_whole_area_) {
      from = 0;
      to = area_.size();
    }
    const bool durable =
        std::all_of(batch.begin(), batch.end(), [](const Pending& p) { return p.data_durable; });
    Plan plan{.first_area = first_area,
              .from = from,
              .bytes = std::vector<uint8_t>(area_.begin() + static_cast<ptrdiff_t>(from),
                                            area_.begin() + static_cast<ptrdiff_t>(to)),
              .exceptions = batch.size(),
              .durable = durable};

    Status s =
        layout_.area_location(first_area) >= device_chunks_
            ? write_chunk(layout_.area_location(first_area), area_, durable)  // refused, with the reason
            : Status::Ok();
    for (const AreaImage& image : later) {
      if (s.ok()) s = write_chunk(layout_.area_location(image.area), image.bytes, durable);
    }
    if (s.ok() && zero_next) {
      const uint64_t chunk = layout_.area_location(area + 1);
      if (durable) {
        s = write_chunk(chunk, std::vector<uint8_t>(geometry_.chunk_bytes(), 0), true);
      } else {
        s = cow_->write_zeroes(geometry_.offset_of(ChunkIndex{chunk}), geometry_.chunk_bytes());
      }
    }
    if (!durable) flush_owed_ = true;
    if (!s.ok()) return batch_error(batch.size(), s);

    if (!later.empty()) area_ = std::move(later.back().bytes);
    committed_ = slot;
    if (last_full) {
      ++area;
      std::fill(area_.begin(), area_.end(), uint8_t{0});
      committed_ = 0;
    }
    rewrite_whole_area_ = false;
    planned_ = std::move(plan);
    std::lock_guard lock(mu_);
    current_area_ = area;
    return Status::Ok();
  }

  // Steps 2 and 4 (and, in the pipeline, one flush is both); nothing to do
  // when every write since the last flush was durable already.
  Status flush_batches() {
    if (!std::exchange(flush_owed_, false)) return Status::Ok();
    Status s = cow_->flush();
    if (!s.ok()) {
      mark_invalid();
      return Status::Error(EIO, fmt::format("{}: cannot flush exceptions, snapshot store invalidated: {}",
                                            cow_->describe(), s.message()));
    }
    return Status::Ok();
  }

  // Step 3: the first area's sectors, which make the batch reachable.
  Status publish_batch() {
    const Plan plan = std::move(*planned_);
    planned_.reset();
    const uint64_t location = layout_.area_location(plan.first_area);
    const uint64_t at = geometry_.offset_of(ChunkIndex{location}) + plan.from;
    Status s = plan.durable ? cow_->write_durable(at, plan.bytes) : cow_->write(at, plan.bytes);
    if (!plan.durable) flush_owed_ = true;
    if (!s.ok()) return batch_error(plan.exceptions, s);
    return Status::Ok();
  }

  Status write_chunk(uint64_t chunk, std::span<const uint8_t> bytes, bool durable) {
    if (chunk >= device_chunks_) {
      // Only reachable when commits name chunks prepare_exception never
      // handed out; refuse rather than write past the end.
      return Status::Error(EIO, fmt::format("metadata chunk {} is beyond the device's end ({} chunks)", chunk,
                                            device_chunks_.load()));
    }
    const uint64_t at = geometry_.offset_of(ChunkIndex{chunk});
    return durable ? cow_->write_durable(at, bytes) : cow_->write(at, bytes);
  }

  const AreaLayout layout_;
  // Whole chunks of the COW device; grows only (grow()), so a commit that
  // read the old value stays within the device.
  std::atomic<uint64_t> device_chunks_;
  // Guarded by mu_; written by the commit leader only. The area the next
  // prepared batch starts in (one batch may be prepared and unpublished).
  uint64_t current_area_;

  // Owned by the commit leader (the stages run one at a time):
  std::vector<uint8_t> area_;       // current_area_ as it will be on disk once every prepared batch is
  uint64_t committed_;              // entries in area_, prepared ones included
  bool rewrite_whole_area_ = true;  // until the first commit since opening
  std::optional<Plan> planned_;     // the batch prepared and not yet published
  bool flush_owed_ = false;         // a plain write of a batch in flight is not yet flushed

  PipelinedCommit<Pending> commits_;
};

Status format_error(const BlockDevice& dev, std::string problem) {
  return Status::Error(EINVAL, fmt::format("{}: {}", dev.describe(), problem));
}

// Header chunk sizes the kernel could have written: a power of two of
// sectors (LVM's 4 KiB minimum is not the kernel's), capped at LVM's maximum
// so that one metadata area stays a sane buffer.
bool plausible_chunk_sectors(uint32_t chunk_sectors) {
  return std::has_single_bit(chunk_sectors) && uint64_t{chunk_sectors} * kSectorBytes <= kMaxChunkBytes;
}

// Calls entry(area, index, exception) for every entry before the end
// marker, area by area, then end(area, entries, bytes) for the area the
// table ends in (`bytes` its image; empty when the walk ended at the
// device's end after a full area). Stops at the first error either returns.
template <typename EntryFn, typename EndFn>
Status walk_areas(BlockDevice& dev, ChunkGeometry geometry, EntryFn&& entry, EndFn&& end) {
  const AreaLayout layout(geometry.chunk_bytes());
  const uint64_t device_chunks = geometry.chunks_in(dev.size_bytes());
  const uint64_t per_area = layout.exceptions_per_area();
  for (uint64_t area = 0;; ++area) {
    const uint64_t location = layout.area_location(area);
    if (location >= device_chunks) {
      // A full last area that ends exactly at the device's end leaves no
      // room for another: the store is full, not truncated.
      if (area > 0 && location == device_chunks) return end(area, uint64_t{0}, std::vector<uint8_t>{});
      return format_error(dev,
                          fmt::format("metadata area {} at chunk {} is beyond the device's end ({} chunks of "
                                      "{} sectors; truncated?)",
                                      area, location, device_chunks, geometry.chunk_sectors()));
    }
    std::vector<uint8_t> bytes(geometry.chunk_bytes());
    Status s = dev.read(geometry.offset_of(ChunkIndex{location}), bytes);
    if (!s.ok()) {
      return Status::Error(EIO, fmt::format("{}: cannot read metadata area {} at chunk {}: {}",
                                            dev.describe(), area, location, s.message()));
    }
    for (uint64_t n = 0; n < per_area; ++n) {
      const DiskException e = pstore::decode_exception(bytes, n);
      if (e.new_chunk == 0 && e.old_chunk == 0) return end(area, n, std::move(bytes));
      COWSNAP_RETURN_IF_ERROR(entry(area, n, e));
    }
  }
}

// What no writer puts before the end marker: an entry naming a chunk
// beyond the device, the header or a metadata area, an origin chunk beyond
// the origin, a COW chunk another entry names too, or an origin chunk with
// new_chunk 0 (the kernel's end marker, and the entries its merge clears,
// are all zeroes). Entries past the end marker are not checked: a torn
// multi-sector commit can leave them (see prepare_batch) and no walk reaches
// them. Two entries for one origin chunk are not an error here: the kernel
// loads both, and open_snapshot resolves them as its lookup does.
class EntryChecker {
 public:
  EntryChecker(BlockDevice& dev, ChunkGeometry geometry, uint64_t origin_bytes)
      : dev_(dev),
        geometry_(geometry),
        layout_(geometry.chunk_bytes()),
        device_chunks_(geometry.chunks_in(dev.size_bytes())),
        origin_chunks_((origin_bytes + geometry.chunk_bytes() - 1) / geometry.chunk_bytes()),
        named_(device_chunks_, false) {}

  // The error for entry `n` of `area`, or OK.
  Status check(uint64_t area, uint64_t n, const DiskException& e) {
    if (e.new_chunk == 0) {
      return entry_error(
          area, n,
          fmt::format("maps origin chunk {} to chunk 0, the header (a corrupt end marker)", e.old_chunk));
    }
    if (e.new_chunk >= device_chunks_) {
      return entry_error(
          area, n,
          fmt::format("maps to chunk {} beyond the device's end ({} chunks)", e.new_chunk, device_chunks_));
    }
    if (layout_.is_metadata_chunk(e.new_chunk)) {
      return entry_error(area, n,
                         fmt::format("maps to chunk {}, which holds metadata area {}", e.new_chunk,
                                     layout_.area_of(e.new_chunk)));
    }
    if (origin_chunks_ != 0 && e.old_chunk >= origin_chunks_) {
      return entry_error(area, n,
                         fmt::format("names origin chunk {} beyond the origin's end ({} chunks)", e.old_chunk,
                                     origin_chunks_));
    }
    if (named_[e.new_chunk]) return shared_chunk_error(area, n, e.new_chunk);
    named_[e.new_chunk] = true;
    return Status::Ok();
  }

 private:
  // Names both entries: walks again for the first one naming `chunk`.
  Status shared_chunk_error(uint64_t area, uint64_t n, uint64_t chunk) const {
    uint64_t first_area = 0, first_n = 0;
    const Status found = walk_areas(
        dev_, geometry_,
        [&](uint64_t a, uint64_t i, const DiskException& e) {
          if (e.new_chunk != chunk) return Status::Ok();
          first_area = a;
          first_n = i;
          return Status::Error(EEXIST, "found");  // ends the walk
        },
        [](uint64_t, uint64_t, const std::vector<uint8_t>&) { return Status::Ok(); });
    if (found.errnum() != EEXIST) {
      return entry_error(area, n, fmt::format("maps to chunk {}, which an earlier exception maps to", chunk));
    }
    return entry_error(area, n,
                       fmt::format("maps to chunk {}, which exception {} of metadata area {} maps to already",
                                   chunk, first_n, first_area));
  }

  [[nodiscard]] Status entry_error(uint64_t area, uint64_t n, const std::string& what) const {
    return format_error(
        dev_, fmt::format("corrupt exception table: exception {} of metadata area {} {}", n, area, what));
  }

  BlockDevice& dev_;
  const ChunkGeometry geometry_;
  const AreaLayout layout_;
  const uint64_t device_chunks_;
  const uint64_t origin_chunks_;  // 0: the origin's size is unknown
  std::vector<bool> named_;       // COW chunks some entry names so far
};

// Walks the metadata areas of a valid store, checking every entry and
// reporting each good one to `visit` (none after a bad one).
Result<LoadedState> read_exceptions(BlockDevice& dev, ChunkGeometry geometry, uint64_t origin_bytes,
                                    const ExceptionVisitor& visit) {
  const AreaLayout layout(geometry.chunk_bytes());
  EntryChecker checker(dev, geometry, origin_bytes);
  LoadedState state;
  // A bad entry is reported after the walk, so that a truncated device is
  // named as such rather than by the first entry past its end.
  Status bad_entry;
  COWSNAP_RETURN_IF_ERROR(walk_areas(
      dev, geometry,
      [&](uint64_t area, uint64_t n, const DiskException& e) {
        if (!bad_entry.ok()) return Status::Ok();
        bad_entry = checker.check(area, n, e);
        if (!bad_entry.ok()) return Status::Ok();
        state.next_free = std::max(state.next_free, e.new_chunk + 1);
        if (visit) visit(ChunkIndex{e.old_chunk}, ChunkIndex{e.new_chunk});
        return Status::Ok();
      },
      [&](uint64_t area, uint64_t n, std::vector<uint8_t> bytes) {
        state.current_area = area;
        state.committed = n;
        // Bytes past the end marker are dropped (they are unreachable and
        // may be debris of an interrupted write); the area is rewritten
        // from this image on the next commit.
        if (!bytes.empty()) {
          std::fill(bytes.begin() + static_cast<ptrdiff_t>(n * pstore::kEntryBytes), bytes.end(), uint8_t{0});
        }
        state.current_area_bytes = std::move(bytes);
        return Status::Ok();
      }));
  COWSNAP_RETURN_IF_ERROR(bad_entry);
  state.next_free = layout.skip_metadata(state.next_free);
  return state;
}

}  // namespace

Result<std::unique_ptr<ExceptionStore>> create_persistent_store(std::shared_ptr<BlockDevice> cow,
                                                                uint32_t chunk_sectors) {
  if (Status s = validate_chunk_sectors(chunk_sectors); !s.ok()) return s.with_context(cow->describe());
  const ChunkGeometry geometry(chunk_sectors);
  const uint64_t min_chunks = pstore::kHeaderChunks + 2;  // header, area 0, one data chunk
  if (geometry.chunks_in(cow->size_bytes()) < min_chunks) {
    return format_error(
        *cow, fmt::format("device of {} bytes is too small for a snapshot store with {}-byte chunks "
                          "(needs at least {} bytes: header, one metadata area, one data chunk)",
                          cow->size_bytes(), geometry.chunk_bytes(), min_chunks * geometry.chunk_bytes()));
  }
  const AreaLayout layout(geometry.chunk_bytes());
  // Area 0 is zeroed (and durable) before the header names the device a
  // store, so no crash leaves a valid header in front of stale entries.
  std::vector<uint8_t> header(geometry.chunk_bytes(), 0);
  pstore::encode_header(DiskHeader{.chunk_sectors = chunk_sectors}, header);
  Status s =
      cow->write_zeroes(geometry.offset_of(ChunkIndex{layout.area_location(0)}), geometry.chunk_bytes());
  if (s.ok()) s = cow->flush();
  if (s.ok()) s = cow->write(0, header);
  if (s.ok()) s = cow->flush();
  if (!s.ok()) {
    return Status::Error(EIO,
                         fmt::format("{}: cannot create a snapshot store: {}", cow->describe(), s.message()));
  }
  return std::unique_ptr<ExceptionStore>(
      std::make_unique<PersistentStore>(std::move(cow), geometry, LoadedState{}));
}

Result<std::unique_ptr<ExceptionStore>> open_persistent_store(std::shared_ptr<BlockDevice> cow,
                                                              uint32_t chunk_sectors,
                                                              const ExceptionVisitor& visit) {
  return open_persistent_store(std::move(cow), chunk_sectors, 0, visit);
}

Result<std::unique_ptr<ExceptionStore>> open_persistent_store(std::shared_ptr<BlockDevice> cow,
                                                              uint32_t chunk_sectors, uint64_t origin_bytes,
                                                              const ExceptionVisitor& visit) {
  if (cow->size_bytes() < pstore::kHeaderBytes) {
    return format_error(
        *cow,
        fmt::format("not a snapshot store (device of {} bytes has no room for a header)", cow->size_bytes()));
  }
  std::vector<uint8_t> raw(pstore::kHeaderBytes);
  if (Status s = cow->read(0, raw); !s.ok()) {
    return Status::Error(
        EIO, fmt::format("{}: cannot read the snapshot store header: {}", cow->describe(), s.message()));
  }
  const DiskHeader header = pstore::decode_header(raw);
  if (header.magic != pstore::kMagic) {
    return format_error(*cow, fmt::format("not a snapshot store (bad magic 0x{:08x}, expected 0x{:08x})",
                                          header.magic, pstore::kMagic));
  }
  if (header.version != pstore::kVersion) {
    return format_error(*cow, fmt::format("unsupported snapshot store version {} (only version {} is known)",
                                          header.version, pstore::kVersion));
  }
  if (!plausible_chunk_sectors(header.chunk_sectors)) {
    return format_error(*cow,
                        fmt::format("invalid chunk size in the header: {} sectors (a power of two up to {} "
                                    "sectors is expected)",
                                    header.chunk_sectors, kMaxChunkBytes / kSectorBytes));
  }
  if (chunk_sectors != 0 && chunk_sectors != header.chunk_sectors) {
    return format_error(*cow, fmt::format("chunk size mismatch: header says {} sectors, table says {}",
                                          header.chunk_sectors, chunk_sectors));
  }
  const ChunkGeometry geometry(header.chunk_sectors);
  LoadedState state;
  if (header.valid == 0) {
    // As in the kernel: an invalid store's metadata is not read at all.
    state.valid = false;
  } else {
    COWSNAP_ASSIGN_OR_RETURN(state, read_exceptions(*cow, geometry, origin_bytes, visit));
  }
  return std::unique_ptr<ExceptionStore>(
      std::make_unique<PersistentStore>(std::move(cow), geometry, std::move(state)));
}

}  // namespace cowsnap
