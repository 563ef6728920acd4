// BufferPool (buffer_pool.h).
#include "cowsnap/common/buffer_pool.h"

#include <malloc.h>

namespace cowsnap {

namespace {

constexpr size_t kTrimBytes = size_t{1} << 20;

}  // namespace

BufferPool::~BufferPool() {
  for (auto& [bytes, buffers] : kept_) {
    for (void* b : buffers) ::operator delete(b);
  }
}

void* BufferPool::get(size_t bytes) {
  std::vector<void*> evicted;
  size_t evicted_bytes = 0;
  {
    std::lock_guard lock(mu_);
    auto it = kept_.find(bytes);
    if (it != kept_.end() && !it->second.empty()) {
      void* b = it->second.back();
      it->second.pop_back();
      kept_bytes_ -= bytes;
      lent_bytes_ += bytes;
      return b;
    }
    // The workload's sizes changed: every kept buffer (all of other sizes)
    // goes, at once.
    if (kept_bytes_ + lent_bytes_ + bytes > max_kept_) {
      for (auto& [size, buffers] : kept_) {
        evicted_bytes += size * buffers.size();
        evicted.insert(evicted.end(), buffers.begin(), buffers.end());
      }
      kept_.clear();
      kept_bytes_ = 0;
    }
    lent_bytes_ += bytes;
  }
  for (void* b : evicted) ::operator delete(b);
  // malloc keeps freed memory for later requests of the sizes it was cut
  // into; given back to the system, it does not stay resident beside the
  // buffers of the new size.
  if (evicted_bytes >= kTrimBytes) malloc_trim(0);
  try {
    return ::operator new(bytes);
  } catch (...) {
    std::lock_guard lock(mu_);
    lent_bytes_ -= bytes;
    throw;
  }
}

void BufferPool::put(void* buffer, size_t bytes) noexcept {
  if (buffer == nullptr) return;
  {
    std::lock_guard lock(mu_);
    lent_bytes_ -= bytes;
    if (kept_bytes_ + lent_bytes_ + bytes <= max_kept_) {
      try {
        kept_[bytes].push_back(buffer);
        kept_bytes_ += bytes;
        return;
      } catch (...) {  // NOLINT(bugprone-empty-catch): no room to keep it: free it below
      }
    }
  }
  ::operator delete(buffer);
}

size_t BufferPool::kept_bytes() const {
  std::lock_guard lock(mu_);
  return kept_bytes_;
}

}  // namespace cowsnap
