// Exception stores: where a snapshot keeps the origin chunks it saved.
//
// As in the kernel's dm-exception-store, the copy-on-write logic (dm layer)
// talks to this interface only; it never knows the on-disk format. Two
// implementations: persistent ("P", the kernel's on-disk format byte for
// byte, see docs/dm-snapshot.md) and transient ("N", memory only).
//
// The store does not keep the in-memory lookup table; the snapshot does
// (ExceptionTable). The store allocates COW chunks, makes exceptions
// durable, reports usage and remembers validity.
//
// Thread safety: every method may be called concurrently.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "cowsnap/common/block_device.h"
#include "cowsnap/common/chunk.h"
#include "cowsnap/common/status.h"

namespace cowsnap {

// What dm's snapshot status line reports, in 512-byte sectors.
struct StoreUsage {
  uint64_t total_sectors = 0;      // size of the COW device
  uint64_t allocated_sectors = 0;  // header + metadata + data chunks in use
  uint64_t metadata_sectors = 0;   // header + metadata chunks
};

// One exception: origin chunk `old_chunk` is saved at COW chunk `cow_chunk`.
struct NewException {
  ChunkIndex old_chunk;
  ChunkIndex cow_chunk;
  // The data chunk went out with write_durable(): the commit need not
  // flush the COW device for it. A batch made only of such exceptions
  // writes its metadata durably and flushes nothing.
  bool data_durable = false;
};

// Called once per committed exception found on the device, in on-disk order.
using ExceptionVisitor = std::function<void(ChunkIndex old_chunk, ChunkIndex cow_chunk)>;

class ExceptionStore {
 public:
  ExceptionStore() = default;
  ExceptionStore(const ExceptionStore&) = delete;
  ExceptionStore& operator=(const ExceptionStore&) = delete;
  virtual ~ExceptionStore() = default;

  // "P" or "N", as in the dm snapshot table line.
  [[nodiscard]] virtual std::string_view type_code() const = 0;
  [[nodiscard]] virtual const ChunkGeometry& geometry() const = 0;
  // Exception data live at geometry().offset_of(cow_chunk) on this device.
  [[nodiscard]] virtual BlockDevice& cow_device() = 0;
  // False once the store overflowed or was invalidated (and, for a
  // persistent store, when its header says valid = 0).
  [[nodiscard]] virtual bool valid() const = 0;

  // Reserves a COW chunk for a new exception. ENOSPC when the store has no
  // room for one more (the caller then invalidates the snapshot); EIO when
  // the store is invalid.
  virtual Result<ChunkIndex> prepare_exception() = 0;
  // Reserves `n` COW chunks at once, under one lock, so that they are
  // consecutive (metadata chunks skipped) when no chunk given back by
  // abandon_exception() is pending and no other caller interleaves; the
  // caller can then write a run of them with one write. Errors as
  // prepare_exception(); on ENOSPC the chunks already taken stay reserved
  // (the store is invalid anyway). Each chunk is abandoned or committed as
  // one from prepare_exception() is.
  virtual Result<std::vector<ChunkIndex>> prepare_exceptions(size_t n) = 0;
  // The same, except that a store without room for all `n` returns ENOSPC
  // unchanged and still valid (it is about to grow: autoextend).
  virtual Result<std::vector<ChunkIndex>> prepare_exceptions_if_room(size_t n) = 0;
  // Gives back a chunk from prepare_exception() that will not be committed
  // (writing its data failed), so that the next prepare_exception() hands
  // it out again and a failed copy-out costs no space. Crash-safe because
  // no metadata on disk names the chunk. REQUIRES: no commit names it.
  virtual void abandon_exception(ChunkIndex cow_chunk) noexcept = 0;

  // Makes each `old_chunk -> cow_chunk` durable and returns only then.
  // REQUIRES: every cow_chunk came from prepare_exception() and its data
  // were written to cow_device() before this call.
  // Crash safety: the data chunks are durable (flushed, or written durably)
  // before the metadata naming them is written, and the metadata is durable
  // before this returns, so a
  // crash never leaves an exception pointing at unwritten data.
  // Group commit: concurrent callers share one metadata write and flush.
  // Persistent stores pipeline batches: the flush that makes one batch's
  // metadata durable also makes the next batch's data durable, before the
  // next batch's metadata is written; the crash-safety rule above holds for
  // every batch. All or none of a batch become durable-and-acknowledged: on
  // an error the store is invalid, and every caller of both batches in
  // flight gets EIO.
  virtual Status commit_exceptions(std::span<const NewException> exceptions) = 0;

  // Callers waiting in commit_exceptions() that are in no batch yet: for
  // tests that stage a race between batches. 0 for stores without a queue.
  [[nodiscard]] virtual size_t queued_commits() const { return 0; }

  // Marks the store invalid, durably (persistent: header valid = 0 written
  // and flushed). Later prepare/commit calls fail with EIO.
  virtual Status invalidate() = 0;

  [[nodiscard]] virtual StoreUsage usage() const = 0;

  // Growing the COW device online (lvextend, autoextend), in two steps and
  // beside every other method, so that requests never wait for it:
  //  1. prepare_growth(grown) before the COW LV's new size is committed:
  //     writes, durably, what the store needs beyond the old end before a
  //     reader may walk there. A persistent store zeroes the first metadata
  //     area past the old end (an area nobody wrote, on extents that may
  //     hold an old LV's bytes), so a crash after the commit finds the
  //     table's end marker where the table ends.
  //  2. grow(grown) once the size is committed: the device is exchanged
  //     (requests that began on the old one end there) and the new room
  //     can be handed out at once.
  // REQUIRES: `grown` is larger and reads and writes as cow_device() over
  // cow_device()'s size (an LV's first extents keep their place). EINVAL
  // otherwise; EIO when the zeroes cannot be written.
  virtual Status prepare_growth(BlockDevice& grown);
  virtual Status grow(std::shared_ptr<BlockDevice> grown) = 0;

  // Merging (lvconvert --merge, the kernel's snapshot-merge target): the
  // table is taken apart from its end, run by run, in the kernel's way, so
  // that the kernel can continue a merge this store began and the other
  // way round. Only the merge calls these, never beside commit_exceptions().
  //
  // The last run of exceptions on disk: the longest series of entries at
  // the end of the table, within one metadata area, whose origin and COW
  // chunks both count up by one, cut to its last `max_chunks`. chunks == 0
  // once the table is empty. An emptied area is left for the one before
  // it, read from the device. EIO when the store is invalid or the read
  // fails; ENOTSUP for a store that cannot merge (transient).
  struct MergeRun {
    ChunkIndex old_first{0};
    ChunkIndex cow_first{0};
    uint64_t chunks = 0;
  };
  virtual Result<MergeRun> prepare_merge(uint64_t max_chunks);
  // Drops the last `chunks` entries, which the caller has copied back into
  // the origin. Crash safety: REQUIRES that copy to be durable already
  // (the caller flushed the origin); the entries' area is then rewritten
  // with them zeroed and is durable before this returns, so a crash leaves
  // each entry either still in the table (merged again on restart: the
  // copy is idempotent) or gone with its data home. On an error the store
  // is unchanged in memory and the merge must stop. REQUIRES: chunks is at
  // most the run prepare_merge() last returned.
  virtual Status commit_merge(uint64_t chunks);
};

// Persistent store ("P").
// Creates a new store on `cow`: header (valid = 1) and a zeroed first
// metadata area, flushed. EINVAL for a bad chunk size or a device smaller
// than header + one metadata area + one data chunk.
Result<std::unique_ptr<ExceptionStore>> create_persistent_store(std::shared_ptr<BlockDevice> cow,
                                                                uint32_t chunk_sectors);

// Opens an existing persistent store and reports its exceptions to `visit`.
// `chunk_sectors` must match the header's; 0 accepts the header's.
// Errors (EINVAL, naming the device and the problem): bad magic ("not a
// snapshot store"), version other than 1, chunk size mismatch or invalid,
// metadata beyond the device's end (truncated device), and a corrupt
// table, named by metadata area and entry: an entry naming a COW chunk
// beyond the device's end or one holding the header or metadata, a COW
// chunk two entries name, an origin chunk with new_chunk 0 (no writer ends
// a table so). Entries after the end marker are debris a torn commit can
// leave and are ignored; two entries for one origin chunk are both
// reported (the kernel's lookup takes the first). A store whose header says
// valid = 0 opens fine and reports valid() == false, its table unread. On
// an error, `visit` may already have seen some exceptions: discard them.
Result<std::unique_ptr<ExceptionStore>> open_persistent_store(std::shared_ptr<BlockDevice> cow,
                                                              uint32_t chunk_sectors,
                                                              const ExceptionVisitor& visit);
// The same, and an entry naming an origin chunk that starts at or beyond
// `origin_bytes` (the origin's size) is corrupt too.
Result<std::unique_ptr<ExceptionStore>> open_persistent_store(std::shared_ptr<BlockDevice> cow,
                                                              uint32_t chunk_sectors, uint64_t origin_bytes,
                                                              const ExceptionVisitor& visit);

// Transient store ("N"): allocation from chunk 0, nothing on disk but the
// data; commit_exceptions only flushes the data.
Result<std::unique_ptr<ExceptionStore>> create_transient_store(std::shared_ptr<BlockDevice> cow,
                                                               uint32_t chunk_sectors);

}  // namespace cowsnap
