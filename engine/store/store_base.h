// What the persistent and the transient store share: the COW device, the
// chunk geometry, validity and the kernel's allocation test.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <vector>

#include "cowsnap/store/exception_store.h"
#include "growable_device.h"

namespace cowsnap {

class StoreBase : public ExceptionStore {
 public:
  [[nodiscard]] const ChunkGeometry& geometry() const final { return geometry_; }
  [[nodiscard]] BlockDevice& cow_device() final { return *cow_; }

  Status grow(std::shared_ptr<BlockDevice> grown) final {
    COWSNAP_RETURN_IF_ERROR(cow_->grow(std::move(grown)));
    std::lock_guard lock(mu_);
    total_sectors_ = cow_->size_bytes() / kSectorBytes;
    grew_locked();
    return Status::Ok();
  }

  [[nodiscard]] bool valid() const final {
    std::lock_guard lock(mu_);
    return valid_;
  }

  Result<ChunkIndex> prepare_exception() final {
    std::lock_guard lock(mu_);
    return prepare_locked();
  }

  Result<std::vector<ChunkIndex>> prepare_exceptions(size_t n) final {
    std::vector<ChunkIndex> chunks;
    chunks.reserve(n);
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < n; ++i) {
      Result<ChunkIndex> chunk = prepare_locked();
      if (!chunk.ok()) return chunk.status();
      chunks.push_back(*chunk);
    }
    return chunks;
  }

  Result<std::vector<ChunkIndex>> prepare_exceptions_if_room(size_t n) final {
    std::vector<ChunkIndex> chunks;
    chunks.reserve(n);
    std::lock_guard lock(mu_);
    const uint64_t next_free = next_free_;
    const std::vector<uint64_t> abandoned = abandoned_;
    for (size_t i = 0; i < n; ++i) {
      Result<ChunkIndex> chunk = prepare_locked(/*invalidate_when_full=*/false);
      if (!chunk.ok()) {
        next_free_ = next_free;
        abandoned_ = abandoned;
        return chunk.status();
      }
      chunks.push_back(*chunk);
    }
    return chunks;
  }

  void abandon_exception(ChunkIndex cow_chunk) noexcept final {
    std::lock_guard lock(mu_);
    try {
      abandoned_.push_back(cow_chunk.value);
      // Smallest last: handed out first, as a fresh allocation would be.
      std::sort(abandoned_.begin(), abandoned_.end(), std::greater<>());
    } catch (const std::bad_alloc&) {  // NOLINT(bugprone-empty-catch): the chunk stays unused, no harm
    }
  }

 protected:
  StoreBase(std::shared_ptr<BlockDevice> cow, ChunkGeometry geometry, bool valid, uint64_t next_free)
      : cow_(std::make_shared<GrowableDevice>(std::move(cow))),
        geometry_(geometry),
        total_sectors_(cow_->size_bytes() / kSectorBytes),
        valid_(valid),
        next_free_(next_free) {}

  // After grow(): the store's own record of the device's size follows.
  // REQUIRES: mu_ held.
  virtual void grew_locked() {}
  // The chunk prepare_exception hands out after `chunk`.
  [[nodiscard]] virtual uint64_t next_after(uint64_t chunk) const = 0;
  // ENOSPC naming the store. REQUIRES: mu_ held.
  [[nodiscard]] virtual Status full_error() const = 0;
  // EIO naming the store.
  [[nodiscard]] virtual Status invalid_error() const = 0;

  void mark_invalid() {
    std::lock_guard lock(mu_);
    valid_ = false;
  }

  const std::shared_ptr<GrowableDevice> cow_;
  const ChunkGeometry geometry_;

  mutable std::mutex mu_;
  uint64_t total_sectors_;  // guarded by mu_
  bool valid_;              // guarded by mu_
  uint64_t next_free_;      // guarded by mu_; the next fresh chunk prepare hands out
  // Guarded by mu_: chunks below next_free_ given back by abandon_exception,
  // largest first; prepare hands them out before fresh ones.
  std::vector<uint64_t> abandoned_;

  // REQUIRES: mu_ held.
  Result<ChunkIndex> prepare_locked(bool invalidate_when_full = true) {
    if (!valid_) return invalid_error();
    if (!abandoned_.empty()) {
      const ChunkIndex chunk{abandoned_.back()};
      abandoned_.pop_back();
      return chunk;
    }
    // The kernel's test: the chunk after next_free must still end within
    // the device.
    if ((next_free_ + 1) * geometry_.chunk_sectors() > total_sectors_) {
      if (invalidate_when_full) valid_ = false;  // an overflowed store is invalid (the caller persists that)
      return full_error();
    }
    const ChunkIndex chunk{next_free_};
    next_free_ = next_after(next_free_);
    return chunk;
  }

  // Chunks handed out and not given back. REQUIRES: mu_ held.
  [[nodiscard]] uint64_t chunks_in_use() const { return next_free_ - abandoned_.size(); }
};

}  // namespace cowsnap
